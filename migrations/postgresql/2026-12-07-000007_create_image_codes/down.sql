DROP TABLE image_codes;
