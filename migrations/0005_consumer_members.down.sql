DROP TABLE IF EXISTS consumer_members;
