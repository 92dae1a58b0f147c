DROP TABLE sms_sends;
DROP TABLE sms_codes;
