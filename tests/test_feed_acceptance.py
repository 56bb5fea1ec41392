"""Issue 12 acceptance: every feed of the shared corpus, archives included, is valid and stable.

One test over all of them: RFC 4287 RELAX NG (Atom), JSON Feed 1.1 schema, feedparser without
bozo (RSS and Atom), byte-identical on a full rebuild; and a client walking prev-archive (and
JSON next_url) from each site feed collects every published post exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree

from feedpipe.clock import FixedClock
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from tests.helpers import write_config
from tests.test_build import NOW, SCHEMAS, snapshot
from tests.test_feed_archive import _walk, _walk_json

BLOGS = ("blog-000", "blog-001", "blog-002", "blog-003", "blog-004")
FEED_FILES = ("feed.xml", "atom.xml", "feed.json")


def _is_feed(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name in FEED_FILES or (
        "history/" in path and name.split("-", 1)[0] + "." + name.rsplit(".", 1)[-1] in FEED_FILES
    )


def _validate(files: dict[str, bytes]) -> dict[str, int]:
    """Check every feed document; counts by kind."""
    rng = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text("utf-8"))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    counts = {"rss": 0, "atom": 0, "json": 0, "archive": 0}
    for path, data in files.items():
        if not _is_feed(path):
            continue
        name = path.rsplit("/", 1)[-1]
        counts["archive"] += "history/" in path
        if name.endswith(".json"):
            validator.validate(json.loads(data))
            counts["json"] += 1
            continue
        parsed = feedparser.parse(data)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        if name.startswith("atom"):
            assert rng.validate(etree.fromstring(data)), (path, rng.error_log)
            assert parsed.version == "atom10", path
            counts["atom"] += 1
        else:
            assert parsed.version == "rss20", path
            counts["rss"] += 1
    return counts


def test_every_corpus_feed_archives_included_is_valid_stable_and_walks_once(
    tmp_path: Path, corpus_dir: Path
) -> None:
    rows = []
    for blog in BLOGS:
        root, posts = tmp_path / blog, tmp_path / blog / "posts"
        posts.mkdir(parents=True)
        for md in sorted((corpus_dir / blog).glob("*.md")):
            (posts / md.name).write_bytes(md.read_bytes())
        (root / "icon.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        config = write_config(
            root, posts, max_items="3", archive_size="4", websub_hub='"https://hub.example.com/"'
        )
        site = 'icon = "icon.png"\nlogo = "https://blog.example.com/logo.png"\n'
        config.write_text(config.read_text("utf-8").replace("[site]\n", "[site]\n" + site))
        with Feedpipe.from_settings(load_settings(config, env={}), FixedClock(NOW)) as fp:
            fp.build()
            retracted = sorted(posts.glob("*.md"))[0]
            retracted.unlink()  # one post leaves: its Atom tombstone is validated too
            fp.build()
            files = snapshot(root / "out")
            assert fp.build(full=True).written == (), blog  # byte-identical on rebuild
        assert snapshot(root / "out") == files
        counts = _validate(files)
        feeds = sum(1 for p in files if p.endswith("feed.xml") and "history/" not in p)
        assert counts["rss"] == counts["atom"] == counts["json"] >= feeds
        assert b"deleted-entry" in files["atom.xml"] and b"<logo>" in files["atom.xml"]
        assert files["feed-icon.png"] == (root / "icon.png").read_bytes()
        published = len(list(posts.glob("*.md"))) - (blog == "blog-003")  # one duplicate
        out = root / "out"
        rss_ids, docs = _walk(out, "feed.xml")
        atom_ids, _ = _walk(out, "atom.xml")
        json_ids = _walk_json(out, "feed.json")
        assert len(rss_ids) == len(set(rss_ids)) == published, blog
        assert rss_ids == atom_ids == json_ids
        rows.append((blog, feeds, counts, published, len(rss_ids), len(docs)))
    print("\nblog      feeds  rss  atom  json  archive docs  published  walked  documents")
    for blog, feeds, c, published, walked, read in rows:
        print(
            f"{blog}  {feeds:5}  {c['rss']:3}  {c['atom']:4}  {c['json']:4}  {c['archive']:12}"
            f"  {published:9}  {walked:6}  {read:9}"
        )
