DROP TABLE IF EXISTS dead_letters;
DROP TABLE IF EXISTS memberships;
DROP TABLE IF EXISTS notifications;
