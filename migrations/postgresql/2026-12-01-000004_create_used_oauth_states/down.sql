DROP TABLE used_oauth_states;
