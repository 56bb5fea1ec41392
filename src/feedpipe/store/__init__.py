"""The post store: SQLAlchemy 2 over SQLite (default) or PostgreSQL; rows never leave it."""
