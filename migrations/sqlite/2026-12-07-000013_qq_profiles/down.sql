DROP TABLE qq_profiles;
