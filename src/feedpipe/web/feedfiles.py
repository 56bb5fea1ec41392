"""Feed files over HTTP: a raw ASGI app with cached strong ETags, gzip and 304s, no traversal.

A browser navigating to a feed URL gets the feed's human page (index.html beside it) instead;
a feed reader gets the feed's bytes as ever. Full RFC 5005 archive pages are immutable.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import threading
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import anyio.to_thread

from feedpipe.feeds.formats import FILE_NAMES, MEDIA_TYPES, OPML_NAME, XSLT_NAME
from feedpipe.feeds.page import PAGE_NAME
from feedpipe.feeds.render import ARCHIVE_DIR
from feedpipe.web.readers import ReaderLog

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]

UTF8 = "; charset=utf-8"
BY_NAME: dict[str, str] = {FILE_NAMES[f]: MEDIA_TYPES[f] + UTF8 for f in FILE_NAMES}
BY_NAME |= {OPML_NAME: "text/x-opml" + UTF8, XSLT_NAME: "text/xsl" + UTF8}
GZIP_MIN = 256  # smaller bodies are sent as they are
FEED_NAMES = frozenset(FILE_NAMES.values())  # URLs that answer people with the feed's page
VARY_PLAIN = b"Accept-Encoding"
VARY_FEED = b"Accept-Encoding, Accept, Sec-Fetch-Dest, Sec-Fetch-Mode"
IMMUTABLE = b"public, max-age=31536000, immutable"
PAGE_CSP = b"default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'"


def archived_feed(name: str) -> tuple[str, int]:
    """('feed.xml', 3) for an RFC 5005 archive page named 'feed-3.xml'; ('', 0) otherwise."""
    stem, _, ext = name.rpartition(".")
    base, _, number = stem.rpartition("-")
    if number.isdigit() and f"{base}.{ext}" in FEED_NAMES:
        return f"{base}.{ext}", int(number)
    return "", 0


def media_type(name: str) -> str:
    """Content-Type of a file under output_dir: the feed types by name, else by extension."""
    known = BY_NAME.get(name) or BY_NAME.get(archived_feed(name)[0])
    if known:
        return known
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guessed + UTF8 if guessed.startswith("text/") else guessed


@dataclass(frozen=True, slots=True)
class Variant:
    """One representation (identity or gzip) with its prebuilt headers."""

    body: bytes
    etag: bytes
    ok: Headers  # 200
    not_modified: Headers  # 304


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A file's content and representations, valid while (mtime_ns, size) stay the same."""

    stamp: tuple[int, int]
    mtime: int  # whole seconds, for If-Modified-Since
    tags: frozenset[bytes]  # both variants' ETags without quotes
    plain: Variant
    gzipped: Variant | None


def _build(
    path: str, name: str, stamp: tuple[int, int], cache_control: bytes, vary: bytes
) -> CachedFile:
    with open(path, "rb") as handle:
        body = handle.read()
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    mtime = stamp[0] // 1_000_000_000
    common = [
        (b"last-modified", formatdate(mtime, usegmt=True).encode()),
        (b"cache-control", cache_control),
        (b"vary", vary),
    ]
    kind = media_type(name).encode()
    if name.endswith(".html"):
        common.append((b"content-security-policy", PAGE_CSP))
    plain = _variant(body, digest, kind, common, None)
    packed = gzip.compress(body, 6, mtime=0) if len(body) >= GZIP_MIN else None
    gz = _variant(packed, digest + "-gz", kind, common, b"gzip") if packed else None
    tags = frozenset({digest.encode(), (digest + "-gz").encode()})
    return CachedFile(stamp, mtime, tags, plain, gz if gz and len(gz.body) < len(body) else None)


def _variant(
    body: bytes, tag: str, kind: bytes, common: Headers, encoding: bytes | None
) -> Variant:
    etag = f'"{tag}"'.encode()
    base = [(b"etag", etag), *common]
    ok = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"access-control-allow-origin", b"*"),
        *base,
    ]
    if encoding:
        ok.append((b"content-encoding", encoding))
    return Variant(body, etag, ok, base)


def _safe_parts(path: str) -> list[str] | None:
    """URL path segments, or None for anything that could climb out or name a hidden file."""
    if "\\" in path or "\x00" in path or not path.startswith("/"):
        return None
    parts = path[1:].split("/")
    if any(not p or p.startswith(".") for p in parts):
        return None
    return parts


class FeedFiles:
    """Serves every regular file under `root` (GET and HEAD); everything else is 404."""

    def __init__(
        self,
        root: Path,
        cache_control: str = "public, max-age=300",
        max_bytes: int = 64 << 20,
        readers: ReaderLog | None = None,
    ) -> None:
        self.readers = readers  # counts feed fetches per client (web/readers.py)
        self.root = os.path.realpath(root)
        self.cache_control = cache_control.encode()
        self.max_bytes = max_bytes
        self._files: dict[str, tuple[str, CachedFile]] = {}  # URL path → (file path, content)
        self._bytes = 0
        self._lock = threading.Lock()

    def locate(self, url_path: str) -> str | None:
        """The file a URL path names, inside root after following symlinks, else None."""
        parts = _safe_parts(url_path)
        if parts is None:
            return None
        real = os.path.realpath(os.path.join(self.root, *parts))
        if not real.startswith(self.root + os.sep) or not os.path.isfile(real):
            return None
        return real

    async def get(self, url_path: str, key: str | None = None) -> CachedFile | None:
        """Cached content for a URL path (cached under `key`, default the path); re-read (in
        a thread) when the file changed."""
        key = key or url_path
        hit = self._files.get(key)
        if hit is not None:
            try:
                st = os.stat(hit[0])
            except OSError:
                st = None
            if st is not None and (st.st_mtime_ns, st.st_size) == hit[1].stamp:
                return hit[1]
        return await anyio.to_thread.run_sync(self._load, url_path, key)

    def _load(self, url_path: str, key: str) -> CachedFile | None:
        real = self.locate(url_path)
        if real is None:
            self._forget(key)
            return None
        st = os.stat(real)
        name = real.rsplit(os.sep, 1)[-1]
        negotiated = key != url_path or name in FEED_NAMES
        vary = VARY_FEED if negotiated else VARY_PLAIN
        cache_control = IMMUTABLE if self._full_archive(real) else self.cache_control
        cached = _build(real, name, (st.st_mtime_ns, st.st_size), cache_control, vary)
        self._remember(key, real, cached)
        return cached

    @staticmethod
    def _full_archive(real: str) -> bool:
        """An RFC 5005 archive page is full (never changes) once the next page exists."""
        folder, name = os.path.split(real)
        feed, number = archived_feed(name)
        if os.path.basename(folder) != ARCHIVE_DIR or not number:
            return False
        stem, _, ext = feed.rpartition(".")
        return os.path.isfile(os.path.join(folder, f"{stem}-{number + 1}.{ext}"))

    def _remember(self, url_path: str, real: str, cached: CachedFile) -> None:
        with self._lock:
            self._forget_locked(url_path)
            size = _size(cached)
            while self._files and self._bytes + size > self.max_bytes:
                self._forget_locked(next(iter(self._files)))
            self._files[url_path] = (real, cached)
            self._bytes += size

    def _forget(self, url_path: str) -> None:
        with self._lock:
            self._forget_locked(url_path)

    def _forget_locked(self, url_path: str) -> None:
        old = self._files.pop(url_path, None)
        if old is not None:
            self._bytes -= _size(old[1])

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, b"Method Not Allowed\n", [(b"allow", b"GET, HEAD")])
            return
        path: str = scope["path"]
        if path.endswith("/") and path != "/":  # a feed's folder: its page ("/" is the app's)
            path += PAGE_NAME
        headers = _request_headers(scope)
        cached = None
        feed = _names_feed(path)
        if feed and wants_page(headers) and b"raw" not in scope["query_string"]:
            page = path.rsplit("/", 1)[0] + "/" + PAGE_NAME
            cached = await self.get(page, key=path + "#page")
            feed = cached is None
        if cached is None:
            cached = await self.get(path)
        if cached is None:
            await _plain(send, 404, b"Not Found\n", [])
            return
        variant = cached.gzipped if cached.gzipped and _wants_gzip(headers) else cached.plain
        if feed and self.readers is not None and await self._count(path, cached, headers, send):
            return
        if _not_modified(cached, headers):
            await send(
                {"type": "http.response.start", "status": 304, "headers": variant.not_modified}
            )
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.start", "status": 200, "headers": variant.ok})
            await send(
                {"type": "http.response.body", "body": b"" if method == "HEAD" else variant.body}
            )
        if feed:
            await self._flush_readers()

    async def _count(
        self, path: str, cached: CachedFile, headers: dict[bytes, bytes], send: Any
    ) -> bool:
        """Count a feed fetch; True when it was refused (429) instead of served."""
        readers = self.readers
        assert readers is not None
        agent = headers.get(b"user-agent", b"").decode("latin-1")
        conditional = b"if-none-match" in headers or b"if-modified-since" in headers
        fresh = _not_modified(cached, headers)
        if not conditional:
            wait = readers.refused(path, agent, cached.plain.etag)
            if wait is not None:
                retry = [(b"retry-after", str(int(wait)).encode())]
                await _plain(send, 429, b"Too Many Requests: send If-None-Match\n", retry)
                return True
        readers.record(path, agent, 304 if fresh else 200, conditional)
        return False

    async def _flush_readers(self) -> None:
        """After a response went out: write the reader counts when a flush is due."""
        if self.readers is not None and self.readers.due():
            await anyio.to_thread.run_sync(self.readers.flush)


def _size(cached: CachedFile) -> int:
    return len(cached.plain.body) + (len(cached.gzipped.body) if cached.gzipped else 0)


_WANTED = frozenset(
    {
        b"if-none-match",
        b"if-modified-since",
        b"accept-encoding",
        b"accept",
        b"sec-fetch-dest",
        b"sec-fetch-mode",
        b"user-agent",
    }
)


def _request_headers(scope: Scope) -> dict[bytes, bytes]:
    return {k: v for k, v in scope["headers"] if k in _WANTED}


def _names_feed(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in FEED_NAMES and f"/{ARCHIVE_DIR}/" not in path


def wants_page(headers: dict[bytes, bytes]) -> bool:
    """A browser navigating to the URL (a person), not a feed reader fetching it.

    With Fetch Metadata: a navigation of a document that accepts HTML; without (older
    browsers): an Accept header that lists text/html first, as browsers send it.
    """
    accept = headers.get(b"accept", b"").lower()
    dest = headers.get(b"sec-fetch-dest")
    if dest is not None:
        mode = headers.get(b"sec-fetch-mode", b"")
        return dest == b"document" and mode == b"navigate" and b"text/html" in accept
    first = accept.split(b",", 1)[0].split(b";", 1)[0].strip()
    return first in (b"text/html", b"application/xhtml+xml")


def _wants_gzip(headers: dict[bytes, bytes]) -> bool:
    value = headers.get(b"accept-encoding", b"").lower()
    if b"gzip" not in value:
        return False
    if b"q=" not in value:
        return True
    for item in value.split(b","):
        coding, _, params = item.strip().partition(b";")
        if coding.strip() in (b"gzip", b"x-gzip"):
            q = params.strip().removeprefix(b"q=")
            return not q or _q(q) > 0
    return False


def _q(text: bytes) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _not_modified(cached: CachedFile, headers: dict[bytes, bytes]) -> bool:
    """If-None-Match (weak comparison, either variant) wins over If-Modified-Since."""
    match = headers.get(b"if-none-match")
    if match is not None:
        if match.strip() == b"*":
            return True
        tags = (t.strip().removeprefix(b"W/").strip(b'"') for t in match.split(b","))
        return any(t in cached.tags for t in tags)
    since = headers.get(b"if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return False
    return when.tzinfo is not None and cached.mtime <= when.timestamp()


async def _plain(send: Any, status: int, body: bytes, extra: Headers) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
