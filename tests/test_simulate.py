"""`feedpipe simulate` prints exactly what the worker then sends over the same period (a fake
clock advanced tick by tick, the file transport), and writes nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from feedpipe.cli import cli
from feedpipe.clock import FixedClock
from feedpipe.outbox.policy import message_id
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from feedpipe.worker.jobs import ServiceJobs

CREATED = "2026-03-29T00:00:00Z"
SYNCED = "2026-03-29T13:00:00Z"
START = datetime(2026, 3, 30, tzinfo=UTC)
END = datetime(2026, 4, 1, 12, tzinfo=UTC)
TICK = timedelta(minutes=30)
SENDER = "digest@blog.example.com"
SUBSCRIBERS = [  # email, options: a mix of every cadence and zone
    ("instant@example.com", ["--frequency", "instant", "--timezone", "Europe/Berlin"]),
    ("daily@example.com", ["--frequency", "daily", "--timezone", "Asia/Kolkata"]),
    ("weekly@example.com", ["--frequency", "weekly", "--weekday", "tue",
                            "--timezone", "America/St_Johns"]),
    ("monthly@example.com", ["--frequency", "monthly", "--month-day", "last",
                             "--timezone", "Australia/Lord_Howe"]),
    ("held@example.com", ["--frequency", "daily", "--min-posts", "2", "--timezone", "UTC"]),
]  # fmt: skip
POSTS = [  # slug, date: one out before the period, two scheduled inside it
    ("first", "2026-03-29T12:00:00Z"),
    ("scheduled", "2026-03-30T18:10:00Z"),
    ("later", "2026-03-31T06:00:00Z"),
]


def make_site(tmp_path: Path, sqlite_url: str) -> Path:
    posts = tmp_path / "posts"
    posts.mkdir()
    for slug, date in POSTS:
        text = f'---\ntitle: "{slug}"\nslug: {slug}\ndate: {date}\n---\nBody of {slug}.\n'
        (posts / f"{slug}.md").write_text(text, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{posts}"\n[store]\nurl = "{sqlite_url}"\n'
        f'[feeds]\noutput_dir = "{tmp_path / "out"}"\n'
        '[digest]\nsend_time = "08:00"\n'
        f'[email]\nfrom_address = "{SENDER}"\ntransport = "outbox"\n'
        f'outbox_dir = "{tmp_path / "eml"}"\n'
        f"[worker]\nplan_seconds = {TICK.total_seconds()}\n",
        encoding="utf-8",
    )
    run = CliRunner().invoke
    for email, options in SUBSCRIBERS:
        added = run(cli, ["--config", str(config), "subscribers", "add", email, "--confirmed",
                          "--time", "08:00", *options, "--now", CREATED])  # fmt: skip
        assert added.exit_code == 0, added.output
    assert run(cli, ["--config", str(config), "sync", "--now", SYNCED]).exit_code == 0
    return config


def digest_of(path: Path) -> tuple[str, str]:
    message = message_from_bytes(path.read_bytes())
    return str(message["To"]).strip("<>").split("<")[-1].rstrip(">"), str(message["Message-ID"])


def test_simulate_prints_what_the_worker_sends(tmp_path: Path, sqlite_url: str) -> None:
    config = make_site(tmp_path, sqlite_url)
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "simulate", "--from", START.isoformat(),
         "--to", END.isoformat(), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # nothing written
    assert not (tmp_path / "eml").exists()  # nothing sent
    printed: list[dict[str, Any]] = json.loads(result.stdout)
    assert {p["subscriber"] for p in printed} == {e for e, _ in SUBSCRIBERS}
    one = CliRunner().invoke(
        cli,
        ["--config", str(config), "simulate", "--from", START.isoformat(),
         "--to", END.isoformat(), "--json", "--subscriber", "monthly@example.com"],
    )  # fmt: skip
    assert json.loads(one.stdout) == [
        p for p in printed if p["subscriber"] == "monthly@example.com"
    ]

    clock = FixedClock(START)
    sent: list[tuple[str, str, str]] = []
    with Feedpipe.from_settings(load_settings(config), clock) as service:
        ids = {s.email: s.id for s in service.subscriptions.subscribers()}
        jobs = ServiceJobs(service, lease_seconds=60)
        seen: set[Path] = set()
        while clock.now() <= END:
            jobs.plan_fill()
            jobs.dispatch_some(lambda: False)
            for path in (
                sorted((tmp_path / "eml").glob("*.eml")) if (tmp_path / "eml").exists() else []
            ):
                if path not in seen:
                    seen.add(path)
                    sent.append((clock.now().isoformat(), *digest_of(path)))
            clock.advance(TICK)
    expected = [
        (p["at"], p["subscriber"], message_id(p["edition"], ids[p["subscriber"]], SENDER))
        for p in printed
    ]
    assert sorted(sent) == sorted(expected)
    by_who: dict[str, list[tuple[str, list[str]]]] = {}
    for p in printed:
        by_who.setdefault(p["subscriber"], []).append((p["local"][:16], p["posts"]))
    assert by_who == {
        # 'first' came out before the period: the instant mail is stale at START, so it goes
        # with the 08:00 catch-up; the others five minutes after publication, at the next tick.
        "instant@example.com": [
            ("2026-03-30T08:00", ["first"]),
            ("2026-03-30T20:30", ["scheduled"]),
            ("2026-03-31T08:30", ["later"]),
        ],
        "daily@example.com": [
            ("2026-03-30T08:00", ["first"]),
            ("2026-03-31T08:00", ["scheduled"]),
            ("2026-04-01T08:00", ["later"]),
        ],
        "weekly@example.com": [("2026-03-31T08:00", ["later", "scheduled", "first"])],  # Tue
        "monthly@example.com": [("2026-03-31T08:00", ["scheduled", "first"])],  # last day
        "held@example.com": [("2026-03-31T08:00", ["later", "scheduled", "first"])],  # min 2
    }
