"""Store mixin for posts: apply a sync's decisions, read posts and feed membership."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from feedpipe.model import Entry, FeedSpec, Post, PostRef, SyncChanges, Term, TermKind
from feedpipe.store.schema import (
    dirty_feeds,
    meta,
    post_terms,
    posts,
    source_docs,
    source_entries,
    terms,
)
from feedpipe.store.sources import dump_report
from feedpipe.store.sqlutil import bulk_insert, chunked, delete_in
from feedpipe.store.terms import TermCache

UrlFor = Callable[[str], str]
# meta: the oldest publication time (old or new) of a post a sync wrote or removed since the
# last build, "" for none; absent: not known (a store from before it was kept). See
# feeds/build.py: archive pages of older posts are known unchanged without reading them.
CHANGED_FROM = "feeds.changed_from"


def _visible(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        posts.c.removed_at.is_(None), posts.c.draft.is_(False), posts.c.published_at <= now
    )


def _entry_values(entry: Entry, url: str) -> dict[str, Any]:
    return {
        "url": url,
        "title": entry.title,
        "summary": entry.summary,
        "summary_html": entry.summary_html,
        "content_html": entry.content_html,
        "published_at": entry.published,
        "updated_at": entry.updated,
        "author": entry.author,
        "image": entry.image,
        "image_alt": entry.image_alt,
        "reading_time": entry.reading_time,
        "draft": entry.draft,
        "content_hash": entry.content_hash,
    }


def feed_keys_of(term_slugs: Iterable[tuple[str, str]]) -> set[str]:
    return {"site"} | {f"{kind}/{slug}" for kind, slug in term_slugs}


class PostsMixin:
    """Posts and their terms."""

    engine: Engine

    def post_refs_of(self, slugs: Sequence[str], ids: Sequence[int]) -> dict[str, PostRef]:
        """Identity of the posts with these slugs or ids, by slug."""
        cols = (posts.c.id, posts.c.slug, posts.c.content_hash, posts.c.removed_at)
        out: dict[str, PostRef] = {}
        with self.engine.connect() as conn:
            for column, values in ((posts.c.slug, list(slugs)), (posts.c.id, list(ids))):
                for chunk in chunked(values):
                    for r in conn.execute(sa.select(*cols).where(column.in_(chunk))):
                        out[r.slug] = PostRef(
                            r.id, r.slug, r.content_hash, r.removed_at is not None
                        )
        return out

    def apply_sync(self, changes: SyncChanges, now: datetime, url_for: UrlFor) -> None:
        """Write one sync's decisions atomically and mark the feeds they touch dirty."""
        with self.engine.begin() as conn:
            touched_ids = [w.post_id for w in changes.posts_write if w.post_id is not None]
            touched_ids += [r.id for r in changes.posts_remove]
            dirty = feed_keys_of(_term_slugs_of(conn, touched_ids)) if touched_ids else set()
            old_times = _published_of(conn, touched_ids)
            if changes.posts_write or changes.posts_remove:
                dirty.add("site")
            _write_docs(conn, changes)
            ids = _write_posts(conn, changes, now, url_for)
            dirty |= _write_terms(conn, changes, ids)
            _write_links(conn, changes, ids)
            for ref in changes.posts_remove:
                conn.execute(sa.update(posts).where(posts.c.id == ref.id).values(removed_at=now))
            _mark_dirty(conn, dirty)
            _lower_changed_from(conn, old_times + [w.entry.published for w in changes.posts_write])

    def post_count(self) -> int:
        """Posts that are not removed."""
        stmt = sa.select(sa.func.count()).select_from(posts).where(posts.c.removed_at.is_(None))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def visible_post_ids(self, spec: FeedSpec, limit: int, now: datetime) -> list[int]:
        """Ids of the newest `limit` visible posts of a feed, newest first (ties by id)."""
        stmt = _of_feed(sa.select(posts.c.id).where(_visible(now)), spec)
        stmt = stmt.order_by(posts.c.published_at.desc(), posts.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).scalars())

    def visible_count(self, spec: FeedSpec, now: datetime, before: datetime) -> tuple[int, int]:
        """How many visible posts a feed has: in all, and published before `before`."""
        older = sa.func.count(sa.case((posts.c.published_at < before, 1)))
        stmt = sa.select(sa.func.count(), older).select_from(posts).where(_visible(now))
        if spec.term is not None:  # the visible-posts index walked once, each id checked
            # against the term's few (a join looks each up in post_terms, or reads its rows)
            of_term = sa.select(post_terms.c.post_id).where(post_terms.c.term_id == _term_id(spec))
            stmt = stmt.where(posts.c.id.in_(of_term))
        with self.engine.connect() as conn:
            total, below = conn.execute(stmt).one()
        return int(total), int(below)

    def changed_from(self) -> str | None:
        """CHANGED_FROM as stored; when absent, "" is stored first (kept from now on), and
        None returned: what changed before is not known."""
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == CHANGED_FROM))
            value = found.scalar()
            if value is None:
                conn.execute(sa.insert(meta).values(key=CHANGED_FROM, value=""))
        return None if value is None else str(value)

    def settle_changes(self, seen: str | None) -> None:
        """A build has taken in every change up to `seen` (what changed_from returned): back
        to "" unless a sync stored an older time meanwhile."""
        stmt = (
            sa.update(meta)
            .where(meta.c.key == CHANGED_FROM, meta.c.value == (seen or ""))
            .values(value="")
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def posts_by_ids(self, ids: Sequence[int]) -> dict[int, Post]:
        out: dict[int, Post] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(ids):
                term_map = _terms_of(conn, chunk)
                for row in conn.execute(sa.select(posts).where(posts.c.id.in_(chunk))):
                    out[row.id] = _post_from_row(row, term_map.get(row.id, []))
        return out

    def feed_terms(self, now: datetime, kinds: Sequence[TermKind]) -> list[Term]:
        """Terms that have at least one visible post, ordered by kind then slug."""
        has_visible = (
            sa.select(sa.literal(1))
            .select_from(post_terms.join(posts, posts.c.id == post_terms.c.post_id))
            .where(post_terms.c.term_id == terms.c.id, _visible(now))
            .exists()
        )
        stmt = (
            sa.select(terms.c.kind, terms.c.name, terms.c.key, terms.c.slug)
            .where(terms.c.kind.in_([k.value for k in kinds]), has_visible)
            .order_by(terms.c.kind, terms.c.slug)
        )
        with self.engine.connect() as conn:
            return [Term(TermKind(r.kind), r.name, r.key, r.slug) for r in conn.execute(stmt)]

    def newly_due_feed_keys(self, since: datetime, now: datetime) -> set[str]:
        """Feeds of posts whose publication time fell in (since, now]: future posts come due."""
        due = sa.select(posts.c.id).where(
            posts.c.published_at > since,
            posts.c.published_at <= now,
            posts.c.removed_at.is_(None),
            posts.c.draft.is_(False),
        )
        with self.engine.connect() as conn:
            ids = list(conn.execute(due).scalars())
            return feed_keys_of(_term_slugs_of(conn, ids)) if ids else set()

    def retractions(self, since: datetime, until: datetime) -> list[tuple[str, datetime, set[str]]]:
        """Posts that left their feeds in (since, until]: (guid, when, feed keys), newest first.

        A post leaves when its file is removed (when = removed_at) or when it becomes a draft
        after it was published (when = its last change); one never published never left.
        """
        names = ("id", "guid", "draft", "published_at", "first_seen_at", "changed_at", "removed_at")
        cols = [posts.c[name] for name in names]
        near = sa.or_(
            sa.and_(posts.c.removed_at > since, posts.c.removed_at <= until),
            sa.and_(posts.c.draft.is_(True), posts.c.changed_at > since),
        )
        found: list[tuple[int, str, datetime]] = []
        with self.engine.connect() as conn:
            for r in conn.execute(sa.select(*cols).where(near)):
                if r.draft and r.changed_at > r.first_seen_at:
                    when = r.changed_at
                elif r.removed_at is not None and not r.draft:
                    when = r.removed_at
                else:
                    continue
                if since < when <= until and r.published_at <= when:
                    found.append((r.id, r.guid, when))
            keys = {i: feed_keys_of(_term_slugs_of(conn, [i])) for i, _, _ in found}
        found.sort(key=lambda f: (f[2], f[0]), reverse=True)
        return [(guid, when, keys[i]) for i, guid, when in found]

    def dirty_feed_keys(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(dirty_feeds.c.feed_key)).scalars())

    def clear_dirty(self, keys: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            delete_in(conn, dirty_feeds.c.feed_key, list(keys))


def _of_feed(stmt: Any, spec: FeedSpec) -> Any:
    """`stmt` (a select over posts) narrowed to the posts of one feed."""
    if spec.term is None:
        return stmt
    stmt = stmt.join(post_terms, post_terms.c.post_id == posts.c.id)
    stmt = stmt.join(terms, terms.c.id == post_terms.c.term_id)
    return stmt.where(terms.c.kind == spec.kind, terms.c.slug == spec.slug)


def _term_id(spec: FeedSpec) -> sa.ScalarSelect[int]:
    return (
        sa.select(terms.c.id)
        .where(terms.c.kind == spec.kind, terms.c.slug == spec.slug)
        .scalar_subquery()
    )


def changed_from_value(when: datetime) -> str:
    """A CHANGED_FROM value: fixed-width UTC, so SQL string order is time order."""
    utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _published_of(conn: Connection, post_ids: list[int]) -> list[datetime]:
    out: list[datetime] = []
    for chunk in chunked(post_ids):
        stmt = sa.select(posts.c.published_at).where(posts.c.id.in_(chunk))
        out += conn.execute(stmt).scalars()
    return out


def _lower_changed_from(conn: Connection, times: list[datetime]) -> None:
    """Keep CHANGED_FROM the oldest of `times` (publication times, old and new, of the posts
    written or removed) and what it held; a store that does not keep it (absent) stays so."""
    if not times:
        return
    low = min(changed_from_value(when) for when in times)
    held = meta.c.value
    stmt = sa.update(meta).where(meta.c.key == CHANGED_FROM, sa.or_(held == "", held > low))
    conn.execute(stmt.values(value=low))


def _term_slugs_of(conn: Connection, post_ids: list[int]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for chunk in chunked(post_ids):
        stmt = (
            sa.select(terms.c.kind, terms.c.slug)
            .join(post_terms, post_terms.c.term_id == terms.c.id)
            .where(post_terms.c.post_id.in_(chunk))
        )
        out |= {(r.kind, r.slug) for r in conn.execute(stmt)}
    return out


def _terms_of(conn: Connection, post_ids: Sequence[int]) -> dict[int, list[Term]]:
    """Each post's terms in order: the (post, term) pairs, and each term they name read once
    (a chunk of posts names a few hundred terms in thousands of pairs)."""
    named = sa.select(post_terms.c.term_id).where(post_terms.c.post_id.in_(post_ids))
    cols = (terms.c.id, terms.c.kind, terms.c.name, terms.c.key, terms.c.slug)
    found = {
        r.id: Term(TermKind(r.kind), r.name, r.key, r.slug)
        for r in conn.execute(sa.select(*cols).where(terms.c.id.in_(named)))
    }
    pairs = (
        sa.select(post_terms.c.post_id, post_terms.c.term_id)
        .where(post_terms.c.post_id.in_(post_ids))
        .order_by(post_terms.c.post_id, post_terms.c.position)
    )
    out: dict[int, list[Term]] = defaultdict(list)
    for post_id, term_id in conn.execute(pairs):
        out[post_id].append(found[term_id])
    return out


def _post_from_row(row: Any, term_list: list[Term]) -> Post:
    return Post(
        id=row.id,
        guid=row.guid,
        slug=row.slug,
        url=row.url,
        title=row.title,
        summary=row.summary,
        content_html=row.content_html,
        published=row.published_at,
        updated=row.updated_at,
        categories=tuple(t for t in term_list if t.kind is TermKind.CATEGORY),
        tags=tuple(t for t in term_list if t.kind is TermKind.TAG),
        author=row.author,
        image=row.image,
        image_alt=row.image_alt,
        reading_time=row.reading_time,
        draft=row.draft,
        content_hash=row.content_hash,
        first_seen_at=row.first_seen_at,
        removed_at=row.removed_at,
        summary_html=row.summary_html,
    )


def _write_docs(conn: Connection, changes: SyncChanges) -> None:
    keys: list[Any] = [w.doc.key for w in changes.docs_upsert] + list(changes.docs_delete)
    delete_in(conn, source_docs.c.key, keys)
    bulk_insert(
        conn,
        source_docs,
        [
            {
                "key": w.doc.key,
                "size": w.doc.size,
                "mtime_ns": w.doc.mtime_ns,
                "sha256": w.sha256,
                "skips": dump_report(w.skips, w.warnings, w.entries),
            }
            for w in changes.docs_upsert
        ],
    )


def _write_posts(
    conn: Connection, changes: SyncChanges, now: datetime, url_for: UrlFor
) -> dict[str, int]:
    """Insert new posts and update changed ones; return slug → id for all written."""
    ids: dict[str, int] = {}
    inserts = [w for w in changes.posts_write if w.post_id is None]
    if inserts:
        rows = []
        for w in inserts:
            url = w.entry.url or url_for(w.slug)
            guid = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, url_for(w.slug)))
            values = _entry_values(w.entry, url)
            rows.append(
                {
                    **values,
                    "slug": w.slug,
                    "guid": guid,
                    "first_seen_at": now,
                    "changed_at": now,
                    "removed_at": None,
                }
            )
        # A plain executemany (C speed) and one id lookup beat INSERT … RETURNING row batches.
        bulk_insert(conn, posts, rows)
        ids.update(_ids_by_slug(conn, [w.slug for w in inserts]))
    for w in changes.posts_write:
        if w.post_id is None:
            continue
        values = _entry_values(w.entry, w.entry.url or url_for(w.slug))
        conn.execute(
            sa.update(posts)
            .where(posts.c.id == w.post_id)
            .values(**values, changed_at=now, removed_at=None)
        )
        ids[w.slug] = w.post_id
    return ids


def _ids_by_slug(conn: Connection, slugs: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in chunked(slugs):
        stmt = sa.select(posts.c.slug, posts.c.id).where(posts.c.slug.in_(chunk))
        out.update(dict(conn.execute(stmt).all()))
    return out


def _write_terms(conn: Connection, changes: SyncChanges, ids: dict[str, int]) -> set[str]:
    """Replace the terms of written posts; return the feed keys of their new terms."""
    written = [(ids[w.slug], w.entry) for w in changes.posts_write]
    delete_in(conn, post_terms.c.post_id, [pid for pid, _ in written])
    cache = TermCache(conn)
    rows: list[dict[str, int]] = []
    slugs: set[tuple[str, str]] = set()
    for post_id, entry in written:
        named = [(TermKind.CATEGORY, n) for n in entry.categories]
        named += [(TermKind.TAG, n) for n in entry.tags]
        seen: set[int] = set()
        for position, (kind, name) in enumerate(named):
            term_id, term = cache.get_or_create(kind, name)
            if term_id not in seen:
                seen.add(term_id)
                rows.append({"post_id": post_id, "term_id": term_id, "position": position})
                slugs.add((kind.value, term.slug))
    bulk_insert(conn, post_terms, rows)
    return feed_keys_of(slugs) if written else set()


def _write_links(conn: Connection, changes: SyncChanges, ids: dict[str, int]) -> None:
    keys: list[Any] = list(changes.links_delete) + [w.key for w in changes.links_upsert]
    delete_in(conn, source_entries.c.key, keys)
    missing = {w.slug for w in changes.links_upsert} - ids.keys()
    if missing:
        found = conn.execute(sa.select(posts.c.id, posts.c.slug).where(posts.c.slug.in_(missing)))
        ids = {**ids, **{r.slug: r.id for r in found}}
    bulk_insert(
        conn,
        source_entries,
        [
            {"key": w.key, "doc_key": w.doc_key, "post_id": ids[w.slug], "entry_hash": w.entry_hash}
            for w in changes.links_upsert
        ],
    )


def _mark_dirty(conn: Connection, keys: set[str]) -> None:
    if not keys:
        return
    existing = set(conn.execute(sa.select(dirty_feeds.c.feed_key)).scalars())
    new = sorted(keys - existing)
    if new:
        conn.execute(sa.insert(dirty_feeds), [{"feed_key": k} for k in new])
