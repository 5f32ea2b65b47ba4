DROP TABLE recipient_preferences;
