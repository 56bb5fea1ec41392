"""Feed items as text: elements, escaped and cleaned exactly as lxml builds and serialises them.

A build serialises hundreds of thousands of items; building each as an lxml tree and
serialising it cost most of an archives-on build. These helpers write the same bytes from
strings (a property test compares them with lxml over arbitrary text):
- text escapes `& < >` and CR; attribute values also `"`, LF and TAB (as libxml2 does);
- a value lxml refuses (a C0 control other than TAB/LF/CR, U+FFFE, U+FFFF, a lone surrogate)
  is cleaned first (`render.clean`), as `render.sub` does when lxml raises; an element whose
  attributes hold one has all its attribute values cleaned.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

from feedpipe.model.text import clean_block, clean_utf8

_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _kept(value: str) -> str:
    """What an element keeps of `value`: itself, or cleaned when lxml would refuse it."""
    if not _REFUSED.search(value):
        return value
    return clean_block(value)


def text(value: str) -> str:
    """Element text as lxml serialises it."""
    value = _kept(value)
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")
    return value


# A post's content goes into its RSS and its Atom item, serialised one after the other (a
# page's new posts in one format, then in the next).
@functools.lru_cache(maxsize=128)
def long_text(value: str) -> bytes:
    """`text(value)` in UTF-8, escaped as bytes: twice as quick for a post's content."""
    try:
        data = value.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return text(value).encode()
    if not clean_utf8(data):
        return text(value).encode()
    for raw, escaped in _TEXT_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


_TEXT_ESCAPES = ((b"&", b"&amp;"), (b"<", b"&lt;"), (b">", b"&gt;"), (b"\r", b"&#13;"))


def joined(tag: str, parts: Iterable[str | bytes]) -> bytes:
    """`<tag>`, the parts (elements, as text or UTF-8), `</tag>`, in UTF-8."""
    data = [p if isinstance(p, bytes) else p.encode() for p in parts]
    return b"".join((f"<{tag}>".encode(), *data, f"</{tag}>".encode()))


def long_element(tag: str, value: str, values: Mapping[str, str] | None = None) -> bytes:
    """An element whose text is long (`long_text`), in UTF-8."""
    head = tag + attrs(values) if values else tag
    return b"".join((f"<{head}>".encode(), long_text(value), f"</{tag}>".encode()))


def _attr(value: str) -> str:
    """An attribute value (already kept) as lxml serialises it, without its quotes."""
    for raw, escaped in _ATTR_ESCAPES:
        if raw in value:
            value = value.replace(raw, escaped)
    return value


_ATTR_ESCAPES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
    ("\t", "&#9;"),
)


def attrs(values: Mapping[str, str]) -> str:
    """` name="value"` for each attribute, in order."""
    found = list(values.values())
    if any(_REFUSED.search(v) for v in found):
        found = [clean_block(v) for v in found]
    return "".join(f' {name}="{_attr(v)}"' for name, v in zip(values, found, strict=True))


def element(tag: str, body: str | None = None, values: Mapping[str, str] | None = None) -> str:
    """`<tag attrs>body</tag>`, or `<tag attrs/>` for no body; `body` is serialised already
    (`text(...)` or child elements)."""
    head = tag + attrs(values) if values else tag
    return f"<{head}/>" if body is None else f"<{head}>{body}</{tag}>"


def leaf(tag: str, value: str | None = None, **values: str) -> str:
    """An element with `value` as its text (like `render.sub`)."""
    return element(tag, None if value is None else text(value), values)
