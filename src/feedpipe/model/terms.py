"""Category and tag names: cleaning, comparison keys and URL slugs."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable

from slugify import slugify

from feedpipe.model.text import clean_line

# Characters that carry meaning in technical names and would vanish in a plain slug.
_SLUG_REPLACEMENTS = [["++", "-plus-plus-"], ["+", "-plus-"], ["#", "-sharp-"], ["&", "-and-"]]


def clean_name(raw: str) -> str:
    """Display form: NFC, then the one-line text rule (`clean_line`: illegal and control
    characters removed, CR/LF and space runs → one space)."""
    return clean_line(unicodedata.normalize("NFC", raw))


def term_key(name: str) -> str:
    """Comparison key: `DevOps` and `devops` are one term."""
    return clean_name(name).casefold()


def base_slug(name: str) -> str:
    """A URL slug for a name: ASCII, lowercase, no '/', never empty, stable."""
    slug = slugify(clean_name(name), replacements=_SLUG_REPLACEMENTS, max_length=80)
    if not slug:
        slug = "t-" + short_hash(term_key(name))
    return slug


def disambiguated_slug(name: str) -> str:
    """The slug for a name whose base slug is taken by another name of the same kind."""
    return f"{base_slug(name)}-{short_hash(term_key(name))}"


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def unique_names(names: Iterable[str]) -> tuple[str, ...]:
    """Cleaned names with case-insensitive duplicates dropped, first spelling kept."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in names:
        name = clean_name(raw)
        key = name.casefold()
        if name and key not in seen:
            seen.add(key)
            out.append(name)
    return tuple(out)
