"""What the email templates see: frozen view objects built from an edition's posts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

from markupsafe import Markup

from feedpipe.emails.text import summary_text, truncate, wrap
from feedpipe.model import DigestSection, EditionContent, Post
from feedpipe.model.text import clean_line

TITLE_CHARS = 200
PREHEADER_CHARS = 140
SECTION_CHARS = 72
TEXT_INDENT = "   "
# The planner's section for posts outside the chosen categories (digests.plan.OTHER_TITLE and
# OTHER_SLUG): its title is translated here.
OTHER_SECTION = ("More posts", "more")


@dataclass(frozen=True, slots=True)
class SiteView:
    """The blog: name, home page, description, language (HTML `lang`), direction, logo."""

    title: str
    url: str
    description: str
    language: str
    direction: str = "ltr"  # "rtl" for right-to-left languages (HTML `dir`)
    logo: str | None = None  # absolute URL of `[site] logo`
    archive_url: str = ""  # the web archive of past digests (`[web] base_url` + /archive/)


@dataclass(frozen=True, slots=True)
class PostText:
    """Per-post text prepared once and reused by every edition holding the post."""

    title: str
    url: str
    summary: str  # plain text, one line, at most ~300 characters
    summary_wrapped: str  # the summary wrapped at 72 columns, indented
    date: str  # the locale's medium date: "Oct 23, 2026" (en), "23.10.2026" (de)
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
    web_url: str = ""  # "view in your browser": this edition in the web archive ("" for none)


@dataclass(frozen=True, slots=True)
class RecipientView:
    """Per-recipient values: placeholders when rendering an edition, real values otherwise."""

    name: str
    greeting: str
    intro: str  # "Here are the newest posts…" (first digest) or "N new posts since…" (later)
    email: str
    unsubscribe_url: str
    preferences_url: str


DateFormat = Callable[[datetime], str]


def post_text(post: Post, site_url: str, date: DateFormat) -> PostText:
    """The parts of a post that do not depend on its edition (`date` formats its date)."""
    summary = summary_text(post.summary, post.content_html)
    return PostText(
        title=truncate(clean_line(post.title), TITLE_CHARS) or "(untitled)",
        url=absolute(post.url, site_url),
        summary=summary,
        summary_wrapped=wrap(summary, TEXT_INDENT),
        date=date(post.published),
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
    content: EditionContent,
    shown: int,
    texts: Mapping[int, PostText],
    site: SiteView,
    web_url: str = "",
    other_title: str = OTHER_SECTION[0],
) -> EditionView:
    """The view of `content` listing its first `shown` posts (texts are keyed by post id);
    `web_url` is where a browser shows it ("" for none), `other_title` the translated title of
    the planner's "More posts" section."""
    sections = cut_sections(content.sections, shown)
    counter = iter(range(1, content.post_count + 2))

    def title(section: DigestSection) -> str:
        return other_title if (section.title, section.slug) == OTHER_SECTION else section.title

    views = tuple(
        SectionView(
            truncate(clean_line(title(s)), SECTION_CHARS),
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
        section_titles=tuple(clean_line(title(s)) for s in content.sections),
        preheader=_preheader(views),
        references=tuple(refs),
        web_url=web_url,
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
