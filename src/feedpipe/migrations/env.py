"""Alembic environment: runs migrations on the connection feedpipe hands over."""

from __future__ import annotations

from alembic import context

from feedpipe.store.schema import metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("feedpipe runs migrations itself: use `feedpipe migrate`")
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
