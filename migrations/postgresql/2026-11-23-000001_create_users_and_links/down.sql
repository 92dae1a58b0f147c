DROP TABLE qq_links;
DROP TABLE users;
