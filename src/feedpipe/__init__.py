"""feedpipe: turn a post store into feeds and digest emails."""

from __future__ import annotations

__all__ = ["__version__"]

# The one place the version is written: pyproject.toml reads it (setuptools `attr`), so
# `feedpipe --version` needs no importlib.metadata (tens of milliseconds at start-up).
__version__ = "0.1.0"
