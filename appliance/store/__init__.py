"""The data store: one SQLite database, numbered migrations, typed rows."""
