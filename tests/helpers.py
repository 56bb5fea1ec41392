"""Small helpers for tests: write a config and posts into a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

SITE_URL = "https://blog.example.com"


def sqlite_file_url(folder: Path, name: str = "fp.db") -> str:
    """The URL of a SQLite store in `folder` (the `sqlite_url` fixture is `folder`/fp.db)."""
    return f"sqlite:///{folder / name}"


def write_config(root: Path, posts: Path, store_url: str | None = None, **feeds: str) -> Path:
    """A config.toml in `root` pointing at `posts`, a SQLite store and `root/out`."""
    extra = "".join(f"{k} = {v}\n" for k, v in feeds.items())
    store = store_url or sqlite_file_url(root)
    text = (
        f'[site]\ntitle = "Test Blog"\nurl = "{SITE_URL}"\ndescription = "d"\n'
        f'author = "Ann Author"\n[source]\npath = "{posts}"\n[store]\nurl = "{store}"\n'
        f'[feeds]\noutput_dir = "{root / "out"}"\n{extra}'
    )
    config = root / "config.toml"
    config.write_text(text, encoding="utf-8")
    return config


def post(
    folder: Path,
    slug: str,
    *,
    title: str | Literal[False] | None = None,
    date: str = "2026-01-01T09:00:00Z",
    categories: str = "[Rust]",
    tags: str = "[]",
    body: str = "Body text.",
    extra: str = "",
) -> Path:
    """Write one Markdown post and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    head = f'title: "{title or slug}"\n' if title is not False else ""
    text = (
        f'---\n{head}slug: {slug}\ndate: {date}\nsummary: "About {slug}"\n'
        f"categories: {categories}\ntags: {tags}\n{extra}---\n{body}\n"
    )
    path = folder / f"{slug}.md"
    path.write_text(text, encoding="utf-8")
    return path


def write_post(folder: Path, slug: str, date: str, categories: str) -> None:
    """A minimal post: title = slug, the given date and categories (YAML flow list)."""
    text = f'---\ntitle: "{slug}"\ndate: {date}\ncategories: {categories}\n---\nBody of {slug}.\n'
    (folder / f"{slug}.md").write_text(text, encoding="utf-8")
