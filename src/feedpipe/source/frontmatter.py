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

# Fields that are text whatever they look like: YAML 1.1 would turn `title: 2.50` into 2.5,
# `slug: 0777` into 511 and `title: no` into False. Their plain scalars keep their source text
# (null stays null: `title: ~` is a missing title).
TEXT_KEYS = frozenset(
    {"title", "slug", "summary", "description", "author", "categories", "category", "tags",
     "tag", "image_alt", "name"}
)  # fmt: skip
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"


def _as_written(node: yaml.Node) -> None:
    """Re-tag the plain scalars under `node` (a text field's value) as strings."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag != _NULL and not node.style:  # plain: None (Python) or "" (libyaml)
            node.tag = _STR
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _as_written(item)
    elif isinstance(node, yaml.MappingNode):  # author: {name: …}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in TEXT_KEYS:
                _as_written(value)


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
        meta = _construct(source)
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


def _construct(source: str) -> object:
    """Compose the YAML, keep text fields as written, then construct Python values."""
    loader = _Loader(source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value in TEXT_KEYS:
                    _as_written(value)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _describe(exc: yaml.YAMLError) -> str:
    """`line N, column M: problem`, counted in the file (front matter starts on line 2). A
    problem found only at the end (an unclosed quote or bracket) is placed where it began."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context", None)
    begun = getattr(exc, "context_mark", None)
    if begun is not None and "end of stream" in str(problem):
        what = str(context or "").removeprefix("while scanning ").removeprefix("while parsing ")
        mark, problem = begun, f"{what} is never closed" if what else problem
    if mark is None:
        return str(problem)
    return f"line {mark.line + 2}, column {mark.column + 1}: {problem}"
