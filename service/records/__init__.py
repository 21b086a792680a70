"""Records: the store (SQLite default / PostgreSQL), its migrations, and coordination."""
