"""What the email templates see: frozen view objects built from an edition's posts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

from markupsafe import Markup

from feedpipe.emails.text import summary_text, truncate, wrap
from feedpipe.model import DigestSection, EditionContent, Post
from feedpipe.model.text import clean_line

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TITLE_CHARS = 200
PREHEADER_CHARS = 140
SECTION_CHARS = 72
TEXT_INDENT = "   "


@dataclass(frozen=True, slots=True)
class SiteView:
    """The blog: name, home page, description."""

    title: str
    url: str
    description: str
    language: str


@dataclass(frozen=True, slots=True)
class PostText:
    """Per-post text prepared once and reused by every edition holding the post."""

    title: str
    url: str
    summary: str  # plain text, one line, at most ~300 characters
    summary_wrapped: str  # the summary wrapped at 72 columns, indented
    date: str  # "Oct 23, 2026"
    image: str | None  # absolute URL
    summary_html: Markup | None = None  # a Markdown summary's sanitised HTML (summary_format)


@dataclass(frozen=True, slots=True)
class PostView:
    """One post as the templates show it."""

    title: str
    url: str
    summary: str
    summary_wrapped: str
    date: str
    published: datetime
    categories: tuple[str, ...]
    author: str | None
    reading_time: int | None
    image: str | None
    image_alt: str
    ref: int  # number of the post's link in the text part's references
    title_wrapped: str  # "Title [ref]" wrapped at 72 columns
    summary_html: Markup | None = None  # sanitised HTML (HTML part only); else use `summary`


@dataclass(frozen=True, slots=True)
class SectionView:
    """A category heading and its posts."""

    title: str
    slug: str
    posts: tuple[PostView, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    """A numbered link of the text part."""

    number: int
    url: str


@dataclass(frozen=True, slots=True)
class EditionView:
    """The edition as the templates show it (shared by all its recipients)."""

    key: str
    post_count: int  # posts in the edition
    shown_count: int  # posts listed in this message
    more_count: int  # posts left out: under the size limit, or past [digest] max_posts
    more_url: str
    more_ref: int  # reference number of more_url in the text part (0 when more_count == 0)
    sections: tuple[SectionView, ...]
    section_titles: tuple[str, ...]
    preheader: str
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class RecipientView:
    """Per-recipient values: placeholders when rendering an edition, real values otherwise."""

    name: str
    greeting: str
    email: str
    unsubscribe_url: str
    preferences_url: str


def format_date(moment: datetime) -> str:
    """A locale-independent date such as "Oct 23, 2026"."""
    return f"{MONTHS[moment.month - 1]} {moment.day}, {moment.year}"


def post_text(post: Post, site_url: str) -> PostText:
    """The parts of a post that do not depend on its edition."""
    summary = summary_text(post.summary, post.content_html)
    return PostText(
        title=truncate(clean_line(post.title), TITLE_CHARS) or "(untitled)",
        url=absolute(post.url, site_url),
        summary=summary,
        summary_wrapped=wrap(summary, TEXT_INDENT),
        date=format_date(post.published),
        image=absolute(post.image, site_url) if post.image else None,
        summary_html=Markup(post.summary_html) if post.summary_html else None,  # sanitised at sync
    )


def absolute(url: str, site_url: str) -> str:
    """`url` resolved against the site root."""
    return urljoin(site_url.rstrip("/") + "/", url.strip())


def cut_sections(sections: Sequence[DigestSection], shown: int) -> tuple[DigestSection, ...]:
    """The first `shown` posts in section order; emptied sections dropped."""
    kept: list[DigestSection] = []
    for section in sections:
        if shown <= 0:
            break
        posts = section.posts[:shown]
        shown -= len(posts)
        if posts:
            kept.append(DigestSection(section.title, section.slug, posts))
    return tuple(kept)


def edition_view(
    content: EditionContent, shown: int, texts: Mapping[int, PostText], site: SiteView
) -> EditionView:
    """The view of `content` listing its first `shown` posts (texts are keyed by post id)."""
    sections = cut_sections(content.sections, shown)
    counter = iter(range(1, content.post_count + 2))
    views = tuple(
        SectionView(
            truncate(clean_line(s.title), SECTION_CHARS),
            s.slug,
            tuple(_post_view(p, texts[p.id], next(counter)) for p in s.posts),
        )
        for s in sections
    )
    refs = [Reference(p.ref, p.url) for s in views for p in s.posts]
    more = content.post_count - len(refs) + content.more  # cut for size, or past max_posts
    more_ref = len(refs) + 1 if more else 0
    if more:
        refs.append(Reference(more_ref, site.url))
    return EditionView(
        key=content.key,
        post_count=content.post_count,
        shown_count=len(refs) - (1 if more else 0),
        more_count=more,
        more_url=site.url,
        more_ref=more_ref,
        sections=views,
        section_titles=tuple(clean_line(s.title) for s in content.sections),
        preheader=_preheader(views),
        references=tuple(refs),
    )


def _post_view(post: Post, text: PostText, ref: int) -> PostView:
    return PostView(
        title=text.title,
        url=text.url,
        summary=text.summary,
        summary_wrapped=text.summary_wrapped,
        date=text.date,
        published=post.published,
        categories=tuple(clean_line(t.name) for t in post.categories),
        author=clean_line(post.author) if post.author else None,
        reading_time=post.reading_time,
        image=text.image,
        image_alt=clean_line(post.image_alt or post.title),
        ref=ref,
        title_wrapped=wrap(f"{text.title} [{ref}]"),
        summary_html=text.summary_html,
    )


def _preheader(sections: Sequence[SectionView]) -> str:
    titles = [p.title for s in sections for p in s.posts]
    return truncate(" · ".join(titles), PREHEADER_CHARS)
