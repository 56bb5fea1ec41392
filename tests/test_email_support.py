"""Helpers for the email tests: corpus posts as Post objects, settings, editions, recipients."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from feedpipe.model import DigestSection, EditionContent, Post, Recipient, Term, TermKind
from feedpipe.settings import Settings, parse_settings

SITE_URL = "https://blog.example.com"


def settings(**digest: Any) -> Settings:
    """Settings of a test site sending digests."""
    return parse_settings(
        {
            "site": {"title": "Blog 002", "url": SITE_URL},
            "digest": digest,
            "email": {
                "from_address": "digest@blog.example.com",
                "from_name": "Blog 002",
                "unsubscribe_mailto": "unsubscribe@blog.example.com",
                "feedback_id": "digest:blog002:feedpipe",
            },
        }
    )


def term(name: str) -> Term:
    slug = name.lower().replace("/", "-").replace(" ", "-")
    return Term(TermKind.CATEGORY, name, name.casefold(), slug)


def make_post(
    number: int, title: str, categories: tuple[str, ...] = ("General",), **extra: Any
) -> Post:
    """A published post; `extra` overrides any field."""
    when = datetime(2026, 10, 1, 9, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": number,
        "guid": f"urn:post:{number}",
        "slug": f"post-{number}",
        "url": f"{SITE_URL}/posts/post-{number}/",
        "title": title,
        "summary": f"Summary of post {number}.",
        "content_html": f"<p>Body of post {number}.</p>",
        "published": when,
        "updated": None,
        "categories": tuple(term(c) for c in categories),
        "tags": (),
        "author": None,
        "image": None,
        "image_alt": None,
        "reading_time": 5,
        "draft": False,
        "content_hash": f"h{number}",
        "first_seen_at": when,
    }
    fields.update(extra)
    return Post(**fields)


def _front_matter(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def corpus_posts(folder: Path) -> list[Post]:
    """The folder's posts (a tiny local parser: the sources package is not used here)."""
    md = MarkdownIt("commonmark")
    posts = []
    for number, path in enumerate(sorted(folder.glob("*.md")), start=1):
        meta, body = _front_matter(path)
        title = str(meta.get("title") or meta.get("summary", "")[:60])
        posts.append(
            make_post(
                number,
                title,
                tuple(meta.get("categories") or ("General",)),
                slug=meta["slug"],
                url=f"{SITE_URL}/posts/{meta['slug']}/",
                summary=str(meta.get("summary", "")),
                content_html=md.render(body),
                reading_time=meta.get("reading_time"),
                image_alt=meta.get("image_alt"),
            )
        )
    return posts


def edition(posts: list[Post]) -> EditionContent:
    """Posts grouped by their first category, sections in first-seen order."""
    groups: dict[str, list[Post]] = {}
    for post in posts:
        name = post.categories[0].name if post.categories else "More posts"
        groups.setdefault(name, []).append(post)
    sections = tuple(
        DigestSection(name, name.lower().replace(" ", "-"), tuple(items))
        for name, items in groups.items()
    )
    key = hashlib.sha256(",".join(str(p.id) for p in posts).encode()).hexdigest()[:16]
    return EditionContent(key, sections)


def recipient(name: str | None = "Ann Example", email: str = "ann@example.org") -> Recipient:
    return Recipient(
        subscriber_id=7,
        email=email,
        name=name,
        unsubscribe_url="https://news.example.com/u/tok.abc-123?list=digest&x=1",
        preferences_url="https://news.example.com/p/tok.abc-123",
    )
