"""The live pages of the admin, one module each, read from Redis through ``sources``."""
