"""Types at the boundary between digest planning and email rendering."""

from __future__ import annotations

from dataclasses import dataclass

from feedpipe.model.posts import Post


@dataclass(frozen=True, slots=True)
class DigestSection:
    """One category heading of a digest with its posts (each post appears in one section)."""

    title: str  # category display name, or e.g. "More posts" for posts outside chosen categories
    slug: str
    posts: tuple[Post, ...]


@dataclass(frozen=True, slots=True)
class EditionContent:
    """What one edition says: the same for every subscriber who shares its post set."""

    key: str  # stable id of the edition (hash of its post ids and section layout)
    sections: tuple[DigestSection, ...]
    more: int = 0  # new posts beyond [digest] max_posts: "and N more" links to the site

    @property
    def post_count(self) -> int:
        return sum(len(s.posts) for s in self.sections)


@dataclass(frozen=True, slots=True)
class Recipient:
    """What personalises one message of an edition."""

    subscriber_id: int
    email: str
    name: str | None
    unsubscribe_url: str  # page with one button; also the RFC 8058 one-click POST target
    preferences_url: str
    first: bool = False  # their first digest ("Here are the newest posts…")
    given_name: str | None = None  # what the greeting calls them (else `name` if one word)
