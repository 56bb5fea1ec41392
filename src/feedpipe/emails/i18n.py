"""Localisation of digests: `[site] language` → Babel locale, gettext catalog, dates, direction."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from feedpipe.errors import ValidationError

CATALOGS = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


@dataclass(frozen=True, slots=True)
class Language:
    """One site language: its Babel locale, translations and writing direction."""

    tag: str  # as configured, e.g. "de" or "pt-BR" (the HTML lang attribute)
    locale: Locale
    translations: NullTranslations
    catalog_hash: str  # sha256 of the catalog's source ("" for English): part of edition keys

    @property
    def direction(self) -> str:
        """ "rtl" for right-to-left scripts (Arabic, Hebrew, Persian…), else "ltr"."""
        return "rtl" if self.locale.text_direction == "rtl" else "ltr"

    def date(self, moment: dt.datetime) -> str:
        """The locale's medium date: "Oct 23, 2026" (en), "23.10.2026" (de)."""
        return format_date(moment.date(), "medium", locale=self.locale)

    def long_date(self, day: dt.date) -> str:
        """The locale's long date: "November 21, 2026" (en), "21. November 2026" (de)."""
        return format_date(day, "long", locale=self.locale)


@functools.cache
def language(tag: str) -> Language:
    """The language of `[site] language` (a BCP 47 tag such as "de", "en-GB", "ar"); cached."""
    try:
        locale = Locale.parse(tag.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise ValidationError(f"[site] language = {tag!r} is not a language Babel knows") from exc
    return Language(tag.strip(), locale, *catalog(locale))


def catalog(locale: Locale) -> tuple[NullTranslations, str]:
    """The shipped catalog closest to `locale` ("pt_BR", then "pt"); English strings otherwise.

    Catalogs ship as .po files and are compiled here, once per process: a fresh
    `pip install -e .` or a wheel needs no build step."""
    names = [str(locale), locale.language] if locale.territory else [locale.language]
    for name in names:
        po = CATALOGS / name / "LC_MESSAGES" / f"{DOMAIN}.po"
        if po.is_file():
            source = po.read_bytes()
            return compiled(source, locale), hashlib.sha256(source).hexdigest()
    return NullTranslations(), ""


def compiled(source: bytes, locale: Locale) -> Translations:
    """A .po file compiled in memory into gettext translations (plural rules included)."""
    messages = read_po(io.BytesIO(source), locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, messages)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)
