"""[site] icon / logo: RSS <image>, Atom <icon>/<logo>, JSON Feed icon/favicon; files copied."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree

from feedpipe.clock import FixedClock
from feedpipe.errors import ConfigError, FeedWriteError
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from feedpipe.web.feedfiles import FeedFiles
from tests.helpers import SITE_URL, post, write_config
from tests.test_build import NOW, SCHEMAS
from tests.test_web_helpers import raw_request

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
ATOM = "{http://www.w3.org/2005/Atom}"


def _service(root: Path, site: str) -> Feedpipe:
    post(root / "posts", "a", categories="[Rust]")
    config = write_config(root, root / "posts")
    config.write_text(config.read_text("utf-8").replace("[site]\n", f"[site]\n{site}"), "utf-8")
    return Feedpipe.from_settings(load_settings(config, env={}), FixedClock(NOW))


def test_a_local_icon_is_copied_and_served_and_a_logo_url_is_written_as_is(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Icon.PNG").write_bytes(PNG)
    logo = "https://cdn.example.com/logo.svg"
    with _service(tmp_path, f'icon = "img/Icon.PNG"\nlogo = "{logo}"\n') as fp:
        report = fp.build()
    out = tmp_path / "out"
    icon = f"{SITE_URL}/feed-icon.png"
    assert "feed-icon.png" in report.written
    assert (out / "feed-icon.png").read_bytes() == PNG
    for folder in ("", "category/rust/"):
        rss = feedparser.parse((out / f"{folder}feed.xml").read_bytes())
        assert not rss.bozo and rss.feed.image.href == logo
        assert rss.feed.image.title == rss.feed.title and rss.feed.image.link == rss.feed.link
        data = (out / f"{folder}atom.xml").read_bytes()
        doc = etree.fromstring(data)
        schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
        assert schema.validate(doc), schema.error_log
        assert doc.findtext(ATOM + "icon") == icon and doc.findtext(ATOM + "logo") == logo
        atom = feedparser.parse(data)
        assert not atom.bozo and atom.feed.icon == icon and atom.feed.logo == logo
        feed = json.loads((out / f"{folder}feed.json").read_bytes())
        json_schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text("utf-8"))
        Draft202012Validator(json_schema, format_checker=FormatChecker()).validate(feed)
        assert (feed["icon"], feed["favicon"]) == (logo, icon)
    status, headers, body = raw_request(FeedFiles(out), "/feed-icon.png")
    assert status == 200 and body == PNG and headers[b"content-type"] == b"image/png"


def test_an_icon_alone_is_every_image_and_dropping_it_removes_the_copy(tmp_path: Path) -> None:
    (tmp_path / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>", "utf-8")
    with _service(tmp_path, 'icon = "icon.svg"\n') as fp:
        fp.build()
    out = tmp_path / "out"
    url = f"{SITE_URL}/feed-icon.svg"
    assert feedparser.parse((out / "feed.xml").read_bytes()).feed.image.href == url
    feed = json.loads((out / "feed.json").read_bytes())
    assert (feed["icon"], feed["favicon"]) == (url, url)
    assert etree.parse(str(out / "atom.xml")).find(ATOM + "logo") is None
    config = tmp_path / "config.toml"
    config.write_text(config.read_text("utf-8").replace('icon = "icon.svg"\n', ""), "utf-8")
    with Feedpipe.from_settings(load_settings(config, env={}), FixedClock(NOW)) as fp:
        report = fp.build()
    assert "feed-icon.svg" in report.removed and not (out / "feed-icon.svg").exists()
    assert b"<image>" not in (out / "feed.xml").read_bytes()
    assert "icon" not in json.loads((out / "feed.json").read_bytes())


def test_a_value_that_is_no_image_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[site\] icon: .*neither an http\(s\) URL"):
        _service(tmp_path, 'icon = "notes.txt"\n')


def test_a_missing_icon_file_fails_the_build_naming_the_key(tmp_path: Path) -> None:
    missing = pytest.raises(FeedWriteError, match=r"\[site\] logo: cannot read .*logo.png")
    with _service(tmp_path, 'logo = "nowhere/logo.png"\n') as fp, missing:
        fp.build()
