"""Sync: scan the source, decide what changed (pure), apply it to the store."""
