"""Render a digest edition once (Jinja2 + CSS inlining) into a delivery-ready MIME template."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    select_autoescape,
)

from feedpipe.emails.i18n import Language, language
from feedpipe.emails.inline import Inliner, inline_css
from feedpipe.emails.jinja import environment
from feedpipe.emails.mime import (
    NAME_MARK,
    EditionHeaders,
    MimeTemplate,
    build_template,
    greeting_name,
    personalize_template,
    token,
)
from feedpipe.emails.text import truncate
from feedpipe.emails.views import (
    OTHER_SECTION,
    TEXT_INDENT,
    EditionView,
    PostText,
    RecipientView,
    SiteView,
    edition_view,
    post_text,
)
from feedpipe.errors import ValidationError
from feedpipe.model import EditionContent, Recipient
from feedpipe.model.text import clean_line
from feedpipe.settings import Settings

DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates"
SUBJECT_CHARS = 120
POST_CACHE = 10_000  # prepared posts kept between editions


@dataclass(frozen=True, slots=True)
class RenderedEdition:
    """One edition rendered once: subject, HTML and text with placeholders, and MIME template."""

    key: str
    subject: str
    html: str  # inlined, with recipient placeholders
    text: str  # with recipient placeholders
    template: MimeTemplate
    post_count: int
    shown_count: int  # the rest is listed as "and N more"

    @property
    def mime(self) -> bytes:
        """The complete message with placeholders (what `personalize` substitutes into)."""
        return self.template.data


@dataclass(frozen=True, slots=True)
class RenderedParts:
    """Subject, text and inlined HTML of one rendering."""

    subject: str
    text: str
    html: str


def template_loader(templates_dir: Path | None) -> BaseLoader:
    """The site's folder first (file by file), then feedpipe's default templates."""
    default = FileSystemLoader(DEFAULT_TEMPLATES)
    return ChoiceLoader([FileSystemLoader(templates_dir), default]) if templates_dir else default


def make_environment(templates_dir: Path | None, lang: Language | None = None) -> Environment:
    """Jinja2 with autoescape for .html.j2, StrictUndefined, block-friendly whitespace, and
    the i18n extension with `lang`'s catalog (`_`, `gettext`, `ngettext`, new style)."""
    autoescape = select_autoescape(enabled_extensions=("html.j2", "html"), default=False)
    env = environment(template_loader(templates_dir), autoescape)
    env.add_extension("jinja2.ext.i18n")
    translations = (lang or language("en")).translations
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env


def clean_subject(subject: str) -> str:
    """One line without control characters, at most 120 characters (cut with "…")."""
    return truncate(clean_line(subject), SUBJECT_CHARS) or "Digest"


def default_list_id(settings: Settings) -> str:
    """`[email] list_id`, else "digest." + the site's host name."""
    host = (urlsplit(settings.site.url).hostname or "localhost").lower()
    return settings.email.list_id or f"digest.{host}"


class EmailRenderer:
    """Renders editions for one site; keeps prepared post texts between editions."""

    def __init__(self, settings: Settings, inliner: Inliner = "css_inline") -> None:
        self.settings = settings
        self.inliner: Inliner = inliner
        self.language = language(settings.site.language)
        self.env = make_environment(settings.digest.templates_dir, self.language)
        self.site = SiteView(
            title=clean_line(settings.site.title),
            url=settings.site.url,
            description=clean_line(settings.site.description),
            language=self.language.tag,
            direction=self.language.direction,
            logo=settings.image_url("logo"),
            archive_url=f"{settings.web.base_url}/archive/",
        )
        self.headers = self._edition_headers("")
        self._posts: dict[tuple[int, str], PostText] = {}

    def fingerprint(self) -> str:
        """sha256 of what renders an edition besides its posts: the name and source of every
        template of the effective loader chain (read now: an edit counts at once) and the
        settings the output depends on (site, headers, size limit, inliner)."""
        digest = hashlib.sha256()
        settings = (self.site, self.headers, self.settings.digest.max_bytes, self.inliner)
        digest.update(self.language.catalog_hash.encode())
        digest.update(repr(settings).encode())
        loader = self.env.loader
        assert loader is not None
        for name in sorted(self.env.list_templates()):
            source, _, _ = loader.get_source(self.env, name)
            digest.update(b"\0" + name.encode() + b"\0" + source.encode())
        return digest.hexdigest()

    def _edition_headers(self, subject: str) -> EditionHeaders:
        email = self.settings.email
        return EditionHeaders(
            from_name=email.from_name or self.site.title,
            from_address=email.from_address,
            subject=subject,
            list_id=default_list_id(self.settings),
            list_name=self.site.title,
            unsubscribe_mailto=email.unsubscribe_mailto,
            reply_to=email.reply_to,
            feedback_id=email.feedback_id,
        )

    def post_texts(self, content: EditionContent) -> dict[int, PostText]:
        """Each post's edition-independent text, computed once per post version."""
        if len(self._posts) > POST_CACHE:
            self._posts.clear()
        out: dict[int, PostText] = {}
        for section in content.sections:
            for post in section.posts:
                key = (post.id, post.content_hash)
                if key not in self._posts:
                    self._posts[key] = post_text(post, self.site.url, self.language.date)
                out[post.id] = self._posts[key]
        return out

    def view(
        self, content: EditionContent, shown: int | None = None, *, web: bool = False
    ) -> EditionView:
        """The edition's view listing its first `shown` posts (default: all); `web`: for the
        archive's own page (no "view in your browser" link)."""
        count = content.post_count if shown is None else shown
        web_url = "" if web else self.web_url(content.key)
        other = self.language.translations.gettext(OTHER_SECTION[0])
        return edition_view(content, count, self.post_texts(content), self.site, web_url, other)

    def web_url(self, edition_key: str) -> str:
        """The edition in the web archive: where "view in your browser" leads."""
        return f"{self.site.archive_url}{edition_key}/"

    def render_parts(self, view: EditionView, recipient: RecipientView) -> RenderedParts:
        """Subject, text and inlined HTML for `recipient` (real values or placeholders)."""
        base: dict[str, Any] = {"site": self.site, "edition": view}
        subject = clean_subject(self.env.get_template("subject.txt.j2").render(base))
        context = {**base, "recipient": recipient, "subject": subject, "indent": TEXT_INDENT}
        text = self.env.get_template("digest.txt.j2").render(context)
        html = self.env.get_template("digest.html.j2").render(context)
        return RenderedParts(subject, text, inline_css(html, self.inliner))

    def greeting(self, name: str | None) -> str:
        """The greeting line for a recipient with this name (None: without a name)."""
        recipient = {"name": name}
        return clean_line(self.env.get_template("greeting.txt.j2").render(recipient=recipient))

    def intros(self, view: EditionView) -> tuple[str, str]:
        """The introduction of a first digest and of a later one (`intro.txt.j2`)."""
        template = self.env.get_template("intro.txt.j2")
        base = {"site": self.site, "edition": view}
        return (
            clean_line(template.render(base, first=True)),
            clean_line(template.render(base, first=False)),
        )

    def real_recipient(self, recipient: Recipient, name: str, view: EditionView) -> RecipientView:
        """A recipient's actual values (for previews and the per-recipient reference path)."""
        called = greeting_name(name, recipient.given_name)
        greeting = (
            self.greeting(NAME_MARK).replace(NAME_MARK, called) if called else self.greeting(None)
        )
        first, later = self.intros(view)
        return RecipientView(
            name,
            greeting,
            first if recipient.first else later,
            recipient.email,
            recipient.unsubscribe_url,
            recipient.preferences_url,
        )

    def render_edition(self, content: EditionContent) -> RenderedEdition:
        """Render once; past `max_bytes`, drop posts from the end (listed as "and N more")."""
        limit = self.settings.digest.max_bytes
        full = self._render(content, content.post_count)
        if full.template.size_bound <= limit:
            return full
        low, high, best = 0, content.post_count - 1, None
        while low <= high:
            middle = (low + high) // 2
            candidate = self._render(content, middle)
            if candidate.template.size_bound <= limit:
                best, low = candidate, middle + 1
            else:
                high = middle - 1
        if best is None:
            raise ValidationError(f"even an empty digest exceeds max_bytes = {limit}")
        return best

    def web_page(self, content: EditionContent, reader: Recipient) -> str:
        """`content` as a web page (the archive): the inlined HTML part for `reader`, without
        a name, introduced as a first digest, without the "view in your browser" link."""
        view = self.view(content, web=True)
        return self.render_parts(
            view, self.real_recipient(replace(reader, first=True), "", view)
        ).html

    def single_template(self, key: str, subject: str, text: str, html: str) -> MimeTemplate:
        """A one-off message (e.g. a confirmation) in the same format as an edition, so the
        outbox stores and dispatches it like one; `text`/`html` may use no recipient fields."""
        headers = self._edition_headers(clean_line(subject))
        return build_template(headers, text, html, secrets.token_hex(6), boundary(key), ("", ""))

    def _render(self, content: EditionContent, shown: int) -> RenderedEdition:
        marker = secrets.token_hex(6)
        placeholders = RecipientView(*(token(marker, f.name) for f in fields(RecipientView)))
        view = self.view(content, shown)
        parts = self.render_parts(view, placeholders)
        headers = self._edition_headers(parts.subject)
        greetings = (self.greeting(NAME_MARK), self.greeting(None))
        template = build_template(
            headers,
            parts.text,
            parts.html,
            marker,
            boundary(content.key),
            greetings,
            self.intros(view),
        )
        return RenderedEdition(
            content.key, parts.subject, parts.html, parts.text, template, content.post_count, shown
        )


def boundary(edition_key: str) -> str:
    """A MIME boundary derived from the edition; "=_" never occurs in quoted-printable text."""
    return "=_fp_" + hashlib.sha256(edition_key.encode()).hexdigest()[:32]


def personalize(
    edition: RenderedEdition, recipient: Recipient, message_id: str, date: datetime
) -> bytes:
    """One recipient's complete message, by byte substitution into the edition's template."""
    return personalize_template(edition.template, recipient, message_id, date)
