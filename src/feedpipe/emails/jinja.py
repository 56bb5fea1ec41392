"""The one Jinja2 environment factory: email, confirmation and page templates all use it."""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import BaseLoader, Environment, StrictUndefined

Autoescape = bool | Callable[[str | None], bool]


def environment(
    loader: BaseLoader,
    autoescape: Autoescape,
    *,
    trim_blocks: bool = True,
    keep_trailing_newline: bool = True,
) -> Environment:
    """Jinja2 over `loader` with StrictUndefined (a missing value is an error, never "").

    `trim_blocks` also strips the indentation before a block tag (block-friendly whitespace);
    `keep_trailing_newline` keeps a template's final newline (emails end in one).
    """
    return Environment(
        loader=loader,
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
        keep_trailing_newline=keep_trailing_newline,
    )
