"""feedpipe: turn a post store into feeds and digest emails."""

from __future__ import annotations

from functools import cache

__all__ = ["__version__"]


@cache
def _version() -> str:
    # importlib.metadata costs tens of milliseconds: only when someone asks for the version.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("feedpipe")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"


def __getattr__(name: str) -> str:
    """`feedpipe.__version__`, looked up on first use (PEP 562)."""
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'feedpipe' has no attribute {name!r}")
