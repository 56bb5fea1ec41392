"""Builds that leave out the archive pages they know unchanged write what a fresh build writes.

Any run of edits (posts added, edited, re-dated, removed, made drafts, scheduled posts coming
due, an archive file deleted) and a build after each: every file equals a fresh store's build
of the same posts at the same time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.clock import FixedClock
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from tests.helpers import write_config
from tests.test_build import snapshot

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OPTIONS = {"max_items": "2", "archive_size": "3", "tags": "true", "tombstone_days": "0"}
CATEGORIES = ("[Rust]", "[Go]", "[Rust, Go]")

Op = tuple[str, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "edit", "redate", "remove", "draft", "clock", "lose"]),
        st.integers(0, 40),
        st.integers(0, 340),  # a day after START; beyond NOW's is scheduled
    ),
    min_size=1,
    max_size=4,
)


def _write(
    posts: Path, slug: str, day: int, serial: int = -1, body: str = "", draft: bool = False
) -> None:
    """One post on `day`, `serial` + 1 minutes after 9:00 (no two posts share a time: ties go
    by id, and a fresh store numbers the posts otherwise)."""
    when = START + timedelta(days=day, minutes=serial + 1)
    date = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    cats = CATEGORIES[day % 3]
    tags = "[t1]" if day % 2 else "[t1, t2]"
    extra = "draft: true\n" if draft else ""
    text = (
        f'---\ntitle: "{slug}"\ndate: {date}\ncategories: {cats}\ntags: {tags}\n{extra}---\n'
        f"Body of {slug}. {body}\n"
    )
    (posts / f"{slug}.md").write_text(text, encoding="utf-8")


def _service(root: Path, posts: Path, clock: FixedClock) -> Feedpipe:
    root.mkdir(parents=True, exist_ok=True)
    config = write_config(root, posts, **OPTIONS)
    return Feedpipe.from_settings(load_settings(config, env={}), clock)


def _apply(posts: Path, out: Path, clock: FixedClock, op: Op, serial: int) -> None:
    kind, pick, day = op
    files = sorted(posts.glob("*.md"))
    chosen = files[pick % len(files)] if files else None
    if kind == "add" or chosen is None:
        _write(posts, f"new-{serial}", day, serial)
    elif kind == "edit":
        chosen.write_text(chosen.read_text("utf-8") + f"\nEdited {serial}.\n", "utf-8")
    elif kind == "redate":
        _write(posts, chosen.stem, day, serial, body=f"moved {serial}")
    elif kind == "remove":
        chosen.unlink()
    elif kind == "draft":
        _write(posts, chosen.stem, day, serial, draft=True)
    elif kind == "clock":
        clock.advance(timedelta(days=day % 20))
    else:  # the oldest site archive page goes (a build mends only the feeds it renders)
        (out / "history" / "feed-1.xml").unlink(missing_ok=True)
        _write(posts, f"new-{serial}", day, serial)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=ops)
def test_every_build_after_edits_equals_a_fresh_build(tmp_path_factory, edits: list[Op]) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("incremental")
    posts = tmp / "posts"
    posts.mkdir()
    for i in range(16):
        _write(posts, f"post-{i:02d}", i * 17)
    clock = FixedClock(NOW)
    with _service(tmp / "kept", posts, clock) as fp:
        fp.build()
        for serial, op in enumerate(edits):
            _apply(posts, tmp / "kept" / "out", clock, op, serial)
            fp.build()
            fresh_root = tmp / f"fresh-{serial}"
            with _service(fresh_root, posts, FixedClock(clock.now())) as fresh:
                fresh.build()
            assert snapshot(tmp / "kept" / "out") == snapshot(fresh_root / "out"), edits[
                : serial + 1
            ]
