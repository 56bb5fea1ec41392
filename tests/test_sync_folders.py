"""A sync compares with the store only the top folders whose scan digest moved.

Any run of file operations (posts added in old or new folders, edited at the same size with
a new mtime or at a new size with the same mtime, touched unchanged, renamed, moved across
folders, deleted, whole folders removed, folders differing only in case) and a sync after
each: the store equals, row for row, the store of syncs that compared every document, and
its documents and live posts those of a fresh store's sync.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.model import SyncReport
from feedpipe.model.sync import top_folder
from feedpipe.sync.run import SCAN_META
from feedpipe.sync.scan import by_folder, digest, dump, folder_digests
from tests.helpers import post
from tests.test_build import service

FOLDERS = ("", "a", "A", "a/b", "a-b", "b", "z.md")  # "" is the root
KINDS = ("add", "same_size", "same_mtime", "touch", "delete", "rename", "move", "rmdir")
Op = tuple[str, int, int]
ops = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 30), st.integers(0, 30)),
    min_size=1,
    max_size=8,
)


def _files(posts: Path) -> list[Path]:
    return sorted(p for p in posts.rglob("*.md") if p.is_file())


def _bump(path: Path, serial: int) -> None:
    """A new mtime no other write gave (file systems tick coarser than nanoseconds)."""
    os.utime(path, ns=(0, 1_700_000_000_000_000_000 + serial * 1_000_003))


def _apply(posts: Path, op: Op, serial: int) -> None:
    kind, pick, other = op
    files = _files(posts)
    folder = posts / FOLDERS[other % len(FOLDERS)]
    if kind == "add" or not files:
        post(folder, f"p{serial}", body=f"Body {serial}.")
        _bump(folder / f"p{serial}.md", serial)
        return
    chosen = files[pick % len(files)]
    if kind == "same_size":  # same length, other bytes, new mtime
        text = chosen.read_bytes()
        chosen.write_bytes(text[:-2] + (b"X\n" if text[-2:] != b"X\n" else b"Y\n"))
        _bump(chosen, serial)
    elif kind == "same_mtime":  # other length, the mtime put back
        stat = chosen.stat()
        chosen.write_bytes(chosen.read_bytes() + f"More {serial}.\n".encode())
        os.utime(chosen, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif kind == "touch":
        _bump(chosen, serial)
    elif kind == "delete":
        chosen.unlink()
    elif kind in ("rename", "move"):  # in its folder, or into another (maybe new) one
        target = chosen.parent if kind == "rename" else folder
        target.mkdir(parents=True, exist_ok=True)
        chosen.rename(target / f"r{serial}-{chosen.name}")
    elif chosen.parent != posts:  # rmdir: the chosen file's whole top folder goes
        shutil.rmtree(posts / chosen.relative_to(posts).parts[0])


def _rows(db: Path) -> list[str]:
    """Every statement of the store's dump, sorted: the order of CREATE INDEX lines is the
    order a migration happened to make them in (Alembic's batch copy of the outbox, 0018)."""
    with sqlite3.connect(db) as conn:
        return sorted(conn.iterdump())


def _state(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The stored documents and the live posts (ids aside: a fresh store numbers them anew)."""
    with sqlite3.connect(db) as conn:
        docs = conn.execute("SELECT * FROM source_docs ORDER BY key").fetchall()
        live = conn.execute(
            "SELECT slug, content_hash, title, published_at FROM posts"
            " WHERE removed_at IS NULL ORDER BY slug"
        ).fetchall()
    return docs, live


def _without_time(report: SyncReport) -> SyncReport:
    return replace(report, seconds=0.0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=ops)
def test_folder_digests_sync_exactly_what_comparing_every_document_syncs(  # type: ignore[no-untyped-def]
    tmp_path_factory, steps: list[Op]
) -> None:
    tmp = tmp_path_factory.mktemp("folders")
    posts = tmp / "posts"
    for i, folder in enumerate(FOLDERS[:5]):
        post(posts / folder, f"seed{i}", body=f"Seed {i}.")
    with service(tmp / "kept", posts) as kept, service(tmp / "full", posts) as full:
        kept.sync()
        full.sync()
        for serial, op in enumerate(steps):
            _apply(posts, op, serial)
            full.store.set_meta(SCAN_META, "")  # no digests: every document compared
            ours, theirs = kept.sync(), full.sync()
            assert _without_time(ours) == _without_time(theirs), steps[: serial + 1]
            assert _rows(tmp / "kept" / "fp.db") == _rows(tmp / "full" / "fp.db")
            again = kept.sync()  # nothing changed since: told by the digests alone
            assert again.added == again.updated == again.removed == ()
        with service(tmp / "fresh", posts) as fresh:
            fresh.sync()
        assert _state(tmp / "kept" / "fp.db") == _state(tmp / "fresh" / "fp.db"), steps


def test_a_folder_is_one_run_of_the_sorted_keys_whatever_sorts_between() -> None:
    keys = ["2014-notes.md", "2014.md", "2014/a.md", "2014/z/y.md", "20140.md", "a.md", "b/c.md"]
    stats = sorted((key, 1, 2) for key in keys)
    folders = by_folder(stats)
    assert folders == {
        "": [(k, 1, 2) for k in ("2014-notes.md", "2014.md", "20140.md", "a.md")],
        "2014": [("2014/a.md", 1, 2), ("2014/z/y.md", 1, 2)],
        "b": [("b/c.md", 1, 2)],
    }
    assert digest(folders["2014"]) != digest([("2014/a.md", 1, 2), ("2014/z/y.md", 1, 3)])


def test_an_older_single_digest_or_a_sync_under_way_means_comparing_everything(
    tmp_path: Path,
) -> None:
    posts = tmp_path / "posts"
    post(posts, "two")
    with service(tmp_path, posts) as fp:
        fp.sync()
        for value in ("", "0" * 64, "{broken", "[]", '["a"]'):
            post(posts / "a", "one")
            assert fp.sync().added == ("one",)
            (posts / "a" / "one.md").unlink()
            fp.store.set_meta(SCAN_META, value)
            assert fp.sync().removed == ("one",), value
            assert fp.store.get_meta(SCAN_META) == dump(
                folder_digests(by_folder(fp.source.stats()))
            )


TRICKY = ("a", "A", "a-b", "a%", "a_", "a/b", "é", "a0")


def test_the_stored_stats_of_some_folders_are_exactly_theirs(
    tmp_path: Path, store_url: str
) -> None:
    """On each engine, whatever sorts or matches (LIKE's case, % and _) near a folder's name."""
    posts = tmp_path / "posts"
    for i, folder in enumerate(TRICKY):
        post(posts / folder, f"in{i}")
    post(posts, "a0")  # a0.md at the root, beside the folder a0/
    with service(tmp_path, posts, store_url) as fp:
        fp.sync()
        every = fp.store.source_stats()
        assert len(every) == len(TRICKY) + 1
        for chosen in [{""}, *({top_folder(f)} for f in TRICKY), {"a", "a_", ""}, set()]:
            wanted = {k: v for k, v in every.items() if top_folder(k) in chosen}
            assert fp.store.source_stats(chosen) == wanted, chosen
