"""Alembic migrations of the feedpipe store (run by feedpipe itself on open)."""
