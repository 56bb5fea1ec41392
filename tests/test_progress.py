"""Progress of long work: plain lines on standard error when it is not a terminal (one per
tenth, with what is left), click's bar on a terminal, nothing with --quiet or for small work."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from tests.helpers import write_config, write_post

REPO = Path(__file__).resolve().parents[1]
HEADER = "email,name,categories,frequency,weekday,time,timezone,status\n"


def feedpipe(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    return subprocess.run(
        [sys.executable, "-m", "feedpipe", "--config", str(config), *args],
        env={**env, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def subscribers_csv(path: Path, count: int) -> Path:
    rows = "".join(f"u{i}@example.com,,,daily,,08:00,UTC,active\n" for i in range(count))
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


def posts(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        write_post(folder, f"post-{i:04d}", "2026-01-01T09:00:00Z", '["Rust"]')
    return folder


def test_a_large_import_prints_plain_progress_lines_with_what_is_left(tmp_path: Path) -> None:
    config = write_config(tmp_path, posts(tmp_path / "posts", 1))
    done = feedpipe(config, "subscribers", "import", str(subscribers_csv(tmp_path / "s.csv", 5000)))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert re.fullmatch(r"feedpipe: import: 2000 of 5000 rows \(40%\), about \d+ s left", lines[0])
    assert re.fullmatch(r"feedpipe: import: 4000 of 5000 rows \(80%\), about \d+ s left", lines[1])
    assert lines[2:] == ["feedpipe: import: 5000 of 5000 rows (100%)"]
    assert done.stdout == "imported 5000 subscribers; 0 rows skipped\n"


def test_a_cold_sync_and_build_print_progress_and_quiet_prints_none(tmp_path: Path) -> None:
    folder = posts(tmp_path / "posts", 300)
    (tmp_path / "a").mkdir()
    config = write_config(tmp_path / "a", folder)
    built = feedpipe(config, "build")
    assert built.returncode == 0, built.stderr
    assert built.stderr.splitlines() == ["feedpipe: sync: 300 of 300 documents (100%)"]
    (tmp_path / "b").mkdir()
    quiet = feedpipe(write_config(tmp_path / "b", folder), "--quiet", "sync")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith("sync: 300 added")
    small = feedpipe(config, "subscribers", "import", str(subscribers_csv(tmp_path / "s", 150)))
    assert small.returncode == 0 and small.stderr == ""  # over in a moment: no progress


def test_on_a_terminal_the_progress_is_a_bar(tmp_path: Path) -> None:
    config = write_config(tmp_path, posts(tmp_path / "posts", 1))
    csv = subscribers_csv(tmp_path / "s.csv", 5000)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "feedpipe",
            "--config",
            str(config),
            "subscribers",
            "import",
            str(csv),
        ],
        env={**env, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "100"},
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    seen = b""
    while True:  # read the terminal until the command closes it
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    screen = seen.decode()
    assert "import  [" in screen and "#" in screen and "100%" in screen, screen
    assert "feedpipe: import:" not in screen  # no plain lines on a terminal
    assert out == "imported 5000 subscribers; 0 rows skipped\n"


def test_simulate_prints_progress_over_the_simulated_hours(tmp_path: Path) -> None:
    config = write_config(tmp_path, posts(tmp_path / "posts", 1))
    csv = subscribers_csv(tmp_path / "s.csv", 3)
    assert feedpipe(config, "subscribers", "import", str(csv)).returncode == 0
    args = ("simulate", "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-31T00:00:00Z")
    done = feedpipe(config, *args)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines and lines[-1] == "feedpipe: simulate: 720 of 720 hours (100%)", done.stderr
    assert all(line.startswith("feedpipe: simulate: ") for line in lines)
    assert "nothing sent, nothing written" in done.stdout
    assert feedpipe(config, "--quiet", *args).stderr == ""
