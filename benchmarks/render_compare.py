"""Compare feedgen (with workarounds) against direct lxml building for RSS and Atom."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import feedparser
from feedgen.feed import FeedGenerator
from lxml import etree

from feedpipe.feeds.formats import FORMATS, render_feed
from feedpipe.feeds.render import (
    FeedContext,
    html_url,
    image_type,
    newest,
    post_terms,
    term_url,
)
from feedpipe.model import FeedSpec, Post, Term, TermKind

RUNS = 40
POSTS = 50

Render = Callable[[Sequence[Post]], bytes]
CTX = FeedContext(
    site_title="Bench Blog",
    site_url="https://blog.example.com",
    description="A blog for measuring",
    language="en",
    author="Ann Author",
    author_email="ann@example.com",
    feeds_base_url="https://blog.example.com",
    websub_hubs=("https://hub.example.com/",),
    xslt=True,
    generator="feedpipe 0.1.0",
)
SPEC = FeedSpec(kind="site", slug="", title="Bench Blog")


def make_posts(count: int = POSTS) -> list[Post]:
    """`count` posts, newest first, each with a ~5 KB HTML body, terms and an image."""
    para = "<p>Lorem ipsum dolor sit amet, <a href='https://x.example/'>consectetur</a> &amp;c.</p>"
    body = para * (5000 // len(para) + 1)
    cats = tuple(Term(TermKind.CATEGORY, f"Cat {i}", f"cat {i}", f"cat-{i}") for i in range(2))
    tags = tuple(Term(TermKind.TAG, f"Tag {i}", f"tag {i}", f"tag-{i}") for i in range(3))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Post(
            id=i,
            guid=f"urn:uuid:00000000-0000-0000-0000-{i:012d}",
            slug=f"post-{i}",
            url=f"https://blog.example.com/posts/post-{i}/",
            title=f'Post {i}: 5 < 6 && "x"',
            summary=f"Summary of post {i}.",
            content_html=body,
            published=start - timedelta(days=i),
            updated=start - timedelta(days=i) + timedelta(hours=2),
            categories=cats,
            tags=tags,
            author="Bob Writer",
            image=f"https://blog.example.com/img/{i}.jpg",
            image_alt="An image",
            reading_time=3,
            draft=False,
            content_hash="0" * 64,
            first_seen_at=start,
        )
        for i in range(count)
    ]


def _generator(posts: Sequence[Post], self_href: str, fmt: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("media")
    fg.load_extension("dc")
    fg.id(self_href)
    fg.title(SPEC.title)
    fg.subtitle(CTX.description)
    fg.language(CTX.language)
    fg.generator(CTX.generator)
    # The RSS channel <link> is the last link added: self first, the html page last.
    fg.link(href=self_href, rel="self", type=f"application/{fmt}+xml")
    fg.link(href=CTX.websub_hubs[0], rel="hub")
    fg.link(href=html_url(SPEC, CTX), rel="alternate")
    fg.author(name=CTX.author, email=CTX.author_email)
    built = newest(posts)
    fg.updated(built)
    fg.lastBuildDate(built)
    for post in posts:
        _fg_entry(fg, post)
    return fg


def _fg_entry(fg: FeedGenerator, post: Post) -> None:
    fe = fg.add_entry(order="append")
    fe.id(post.guid)
    fe.guid(post.guid, permalink=False)
    fe.title(post.title)
    fe.link(href=post.url, rel="alternate")
    fe.published(post.published)
    fe.updated(post.modified)
    fe.author(name=post.author)
    fe.dc.dc_creator(post.author)
    fe.summary(post.summary)
    fe.content(post.content_html, type="html")
    for term in post_terms(post):
        fe.category(term=term.name, label=term.name, scheme=term_url(term, CTX))
    if post.image:
        kind = image_type(post.image)
        fe.enclosure(post.image, "0", kind)
        fe.media.content(url=post.image, type=kind, medium="image")
        fe.media.thumbnail(url=post.image)


def feedgen_rss(posts: Sequence[Post]) -> bytes:
    fg = _generator(posts, FORMATS["rss"].url(SPEC, CTX), "rss")
    return bytes(fg.rss_str())


def feedgen_atom(posts: Sequence[Post]) -> bytes:
    fg = _generator(posts, FORMATS["atom"].url(SPEC, CTX), "atom")
    feed, doc = fg._create_atom(extensions=True)
    _fix_atom_links(feed, posts)  # feedgen #135: entry links lose rel/type
    return bytes(etree.tostring(doc, encoding="UTF-8", xml_declaration=True))


def _fix_atom_links(feed: etree._Element, posts: Sequence[Post]) -> None:
    # feedgen builds un-namespaced elements under a default xmlns on the root.
    for entry, post in zip(feed.iterfind("entry"), posts, strict=True):
        for link in entry.findall("link"):
            entry.remove(link)
        etree.SubElement(entry, "link", href=post.url, rel="alternate")
        if post.image:
            attrs = {"href": post.image, "rel": "enclosure", "type": image_type(post.image)}
            etree.SubElement(entry, "link", attrs)


def feedgen_atom_unfixed(posts: Sequence[Post]) -> bytes:
    fg = _generator(posts, FORMATS["atom"].url(SPEC, CTX), "atom")
    return bytes(fg.atom_str())


def lxml_rss(posts: Sequence[Post]) -> bytes:
    return render_feed("rss", SPEC, posts, CTX)


def lxml_atom(posts: Sequence[Post]) -> bytes:
    return render_feed("atom", SPEC, posts, CTX)


def lxml_json(posts: Sequence[Post]) -> bytes:
    return render_feed("json", SPEC, posts, CTX)


def median_ms(renders: Sequence[Render], posts: Sequence[Post]) -> list[float]:
    """Median ms per call of each renderer, timed round-robin so machine load hits all alike."""
    times: list[list[float]] = [[] for _ in renders]
    for render in renders:
        render(posts)  # warm up
    for _ in range(RUNS):
        for slot, render in zip(times, renders, strict=True):
            start = time.perf_counter()
            render(posts)
            slot.append((time.perf_counter() - start) * 1000)
    return [statistics.median(slot) for slot in times]


def check(render: Render, posts: Sequence[Post]) -> str:
    """A short correctness verdict from feedparser: links, enclosures, escaping, order."""
    parsed = feedparser.parse(render(posts))
    problems = []
    if parsed.bozo:
        problems.append(f"bozo: {parsed.bozo_exception}")
    if [e.link for e in parsed.entries] != [p.url for p in posts]:
        problems.append("entry.link is not the post URL")
    if any(len(e.get("enclosures", [])) != 1 for e in parsed.entries):
        problems.append("enclosure missing")
    if parsed.entries and parsed.entries[0].title != posts[0].title:
        problems.append(f"title {parsed.entries[0].title!r}")
    return "; ".join(problems) or "ok"


def main() -> int:
    posts = make_posts()
    print(f"{POSTS} posts, ~{len(posts[0].content_html)} byte bodies, median of {RUNS} runs")
    named: list[tuple[str, Render]] = [
        ("feedgen rss", feedgen_rss),
        ("lxml rss", lxml_rss),
        ("feedgen atom", feedgen_atom),
        ("lxml atom", lxml_atom),
        ("json (stdlib)", lxml_json),
    ]
    medians = median_ms([render for _, render in named], posts)
    for (name, render), ms in zip(named, medians, strict=True):
        verdict = check(render, posts) if render is not lxml_json else "not checked"
        print(f"{name:13}: {ms:6.2f} ms/feed  [{verdict}]")
    print(f"feedgen atom without the link fix: [{check(feedgen_atom_unfixed, posts)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
