"""Naive baseline: python-frontmatter + markdown-it + feedgen, every feed from scratch."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import frontmatter
from feedgen.feed import FeedGenerator
from markdown_it import MarkdownIt
from slugify import slugify

SITE = "https://blog.example.com"


def load(folder: Path) -> list[dict[str, Any]]:
    md = MarkdownIt("commonmark").enable("table")
    posts = []
    for path in sorted(folder.rglob("*.md")):
        doc = frontmatter.load(str(path))
        when: Any = doc["date"]  # YAML front matter: a str, a date or a datetime
        if isinstance(when, str):
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        elif not isinstance(when, datetime) and isinstance(when, date):
            when = datetime.combine(when, time())
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        posts.append({**doc.metadata, "date": when, "html": md.render(doc.content)})
    posts.sort(key=lambda p: p["date"], reverse=True)
    return posts


def write(out: Path, name: str, items: list[dict[str, Any]]) -> None:
    fg = FeedGenerator()
    fg.id(f"{SITE}/{name}")
    fg.title(name or "site")
    fg.link(href=f"{SITE}/{name}/feed.xml", rel="self")
    fg.link(href=SITE, rel="alternate")
    fg.description("naive")
    for p in items[:50]:
        fe = fg.add_entry(order="append")
        fe.id(f"{SITE}/posts/{p['slug']}/")
        fe.title(p["title"])
        fe.link(href=f"{SITE}/posts/{p['slug']}/")
        fe.published(p["date"])
        fe.updated(p["date"])
        fe.summary(p["summary"])
        fe.content(p["html"], type="html")
        for c in p["categories"]:
            fe.category(term=c)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    fg.rss_file(str(folder / "feed.xml"))
    fg.atom_file(str(folder / "atom.xml"))
    items_json = [
        {"id": p["slug"], "title": p["title"], "content_html": p["html"]} for p in items[:50]
    ]
    (folder / "feed.json").write_text(json.dumps({"items": items_json}))


def main(folder: Path, out: Path) -> None:
    posts = load(folder)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in posts:
        for c in p["categories"]:
            groups["category/" + slugify(c)].append(p)
        for t in p.get("tags", []):
            groups["tag/" + slugify(t)].append(p)
    write(out, "", posts)
    for name, items in groups.items():
        write(out, name, items)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
