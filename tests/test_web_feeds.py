"""Feed files over HTTP: media types, strong ETags, 304s, gzip, caching, and no path traversal."""

from __future__ import annotations

import gzip
import os
from email.utils import formatdate

import pytest

from tests.test_web_helpers import Web, raw_request, web

__all__ = ["web"]

TYPES = {
    "/feed.xml": "application/rss+xml; charset=utf-8",
    "/atom.xml": "application/atom+xml; charset=utf-8",
    "/feed.json": "application/feed+json; charset=utf-8",
    "/feeds.opml": "text/x-opml; charset=utf-8",
    "/feed.xsl": "text/xsl; charset=utf-8",
}


@pytest.mark.parametrize("path", sorted(TYPES))
def test_each_file_has_its_media_type_and_cache_headers(web: Web, path: str) -> None:
    r = web.client.get(path, headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == TYPES[path]
    assert r.content == (web.out / path[1:]).read_bytes()
    assert r.headers["etag"].startswith('"') and not r.headers["etag"].startswith("W/")
    assert r.headers["last-modified"].endswith("GMT")
    assert r.headers["cache-control"] == "public, max-age=300"
    feed = path in ("/feed.xml", "/atom.xml", "/feed.json")  # a browser gets their page
    negotiated = "Accept-Encoding, Accept, Sec-Fetch-Dest, Sec-Fetch-Mode"
    assert r.headers["vary"] == (negotiated if feed else "Accept-Encoding")
    assert "content-encoding" not in r.headers


def test_category_feeds_are_served_too(web: Web) -> None:
    nested = sorted(p for p in web.out.rglob("feed.xml") if p.parent != web.out)
    assert nested, "the corpus blog has category feeds"
    rel = "/" + nested[0].relative_to(web.out).as_posix()
    r = web.client.get(rel)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/rss+xml")


def test_if_none_match_gives_304_for_either_representation(web: Web) -> None:
    plain = web.client.get("/feed.xml", headers={"accept-encoding": "identity"})
    zipped = web.client.get("/feed.xml", headers={"accept-encoding": "gzip"})
    assert plain.headers["etag"] != zipped.headers["etag"]
    for tag in (plain.headers["etag"], zipped.headers["etag"], "W/" + plain.headers["etag"]):
        r = web.client.get("/feed.xml", headers={"if-none-match": f'"x", {tag}'})
        assert r.status_code == 304 and r.content == b""
        assert r.headers["etag"] and r.headers["cache-control"] and r.headers["last-modified"]
    assert web.client.get("/feed.xml", headers={"if-none-match": '"other"'}).status_code == 200
    assert web.client.get("/feed.xml", headers={"if-none-match": "*"}).status_code == 304


def test_if_modified_since(web: Web) -> None:
    modified = web.client.get("/atom.xml").headers["last-modified"]
    assert web.client.get("/atom.xml", headers={"if-modified-since": modified}).status_code == 304
    before = formatdate(os.stat(web.out / "atom.xml").st_mtime - 60, usegmt=True)
    assert web.client.get("/atom.xml", headers={"if-modified-since": before}).status_code == 200
    bad = web.client.get("/atom.xml", headers={"if-modified-since": "yesterday-ish"})
    assert bad.status_code == 200
    # If-None-Match wins over If-Modified-Since.
    both = {"if-modified-since": modified, "if-none-match": '"nope"'}
    assert web.client.get("/atom.xml", headers=both).status_code == 200


def test_gzip_is_precompressed_and_equal(web: Web) -> None:
    status, headers, body = raw_request(
        web.app, "/feed.xml", headers=[(b"accept-encoding", b"br, gzip;q=0.8")]
    )
    assert status == 200 and headers[b"content-encoding"] == b"gzip"
    assert gzip.decompress(body) == (web.out / "feed.xml").read_bytes()
    assert int(headers[b"content-length"]) == len(body)
    refused = raw_request(web.app, "/feed.xml", headers=[(b"accept-encoding", b"gzip;q=0")])
    assert b"content-encoding" not in refused[1]


def test_head_has_headers_without_body(web: Web) -> None:
    r = web.client.head("/feed.json")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) > 0


def test_changed_file_gets_a_new_etag(web: Web) -> None:
    first = web.client.get("/feed.json").headers["etag"]
    path = web.out / "feed.json"
    path.write_bytes(path.read_bytes() + b"\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 2_000_000_000))
    again = web.client.get("/feed.json", headers={"if-none-match": first})
    assert again.status_code == 200 and again.headers["etag"] != first
    assert again.content == path.read_bytes()


def test_removed_file_is_404(web: Web) -> None:
    assert web.client.get("/feed.json").status_code == 200
    (web.out / "feed.json").unlink()
    assert web.client.get("/feed.json").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/../config.toml",
        "/%2e%2e/config.toml",
        "/..%2fconfig.toml",
        "/category/../../config.toml",
        "//etc/passwd",
        "/etc/passwd",
        "/./feed.xml",
        "/category/",
        "/",
        "/nothing.xml",
        "/feed.xml/",
        "/.hidden",
        "/feed.xml\x00.txt",
        "/..\\config.toml",
    ],
)
def test_no_path_traversal(web: Web, path: str) -> None:
    (web.out / ".hidden").write_text("secret", encoding="utf-8")
    status, _, body = raw_request(web.app.feeds, path)
    assert status == 404
    assert b"secret" not in body and b"[site]" not in body


def test_encoded_dots_through_the_client_are_404(web: Web) -> None:
    for path in (
        "/%2e%2e/config.toml",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/category/%2e%2e/%2e%2e/fp.db",
    ):
        assert web.client.get(path).status_code == 404


def test_symlink_out_of_the_root_is_404(web: Web, tmp_path: os.PathLike[str]) -> None:
    outside = web.out.parent / "outside.xml"
    outside.write_text("<secret/>", encoding="utf-8")
    (web.out / "escape.xml").symlink_to(outside)
    (web.out / "dir").symlink_to(web.out.parent)
    assert web.client.get("/escape.xml").status_code == 404
    assert web.client.get("/dir/outside.xml").status_code == 404
    inside = web.out / "alias.xml"
    inside.symlink_to(web.out / "feed.xml")
    assert web.client.get("/alias.xml").status_code == 200


def test_other_methods_are_405(web: Web) -> None:
    status, headers, _ = raw_request(web.app, "/feed.xml", method="POST")
    assert status == 405 and headers[b"allow"] == b"GET, HEAD"
