"""Split YAML front matter (between `---` lines at the very top) from a Markdown body."""

from __future__ import annotations

import re
from typing import Any

import yaml

from feedpipe.errors import PostError

_CLOSE = re.compile(r"\n(?:---|\.\.\.)[ \t]*(?:\n|$)")
_OPEN = re.compile(r"---[ \t]*(?:\n|$)")


class _Loader(yaml.CSafeLoader):
    """The C safe loader, except that an impossible timestamp (2026-13-45) stays a string."""


def _timestamp(loader: _Loader, node: yaml.ScalarNode) -> object:
    try:
        return loader.construct_yaml_timestamp(node)
    except (ValueError, OverflowError):
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def split(text: str, label: str) -> tuple[dict[str, Any], str]:
    """(front matter mapping, body) of LF-normalised text; PostError when unusable."""
    if not text.strip():
        raise PostError(label, f"{label}: empty file")
    opening = _OPEN.match(text)
    if not opening:
        raise PostError(label, f"{label}: no front matter (the file must start with a '---' line)")
    closing = _CLOSE.search(text, opening.end() - 1)
    if not closing:
        raise PostError(label, f"{label}: front matter never closed (no '---' line after it)")
    meta = _load(text[opening.end() : closing.start() + 1], label)
    return meta, text[closing.end() :]


def _load(source: str, label: str) -> dict[str, Any]:
    try:
        meta = yaml.load(source, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise PostError(label, f"{label}: malformed YAML front matter: {_describe(exc)}") from None
    except RecursionError:
        raise PostError(label, f"{label}: YAML front matter nested too deeply") from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        kind = type(meta).__name__
        raise PostError(label, f"{label}: front matter is a {kind}, not a mapping of fields")
    return {str(key): value for key, value in meta.items()}


def _describe(exc: yaml.YAMLError) -> str:
    """`line N: problem`, with N counted in the file (front matter starts on line 2)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 2}, column {mark.column + 1}: {problem}"
