"""Small things of the command line: --version, shell completion, status --digests, plurals."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpipe.cli import cli
from feedpipe.store import HEAD_REVISION
from tests.helpers import post, write_config

REPO = Path(__file__).resolve().parents[1]


def feedpipe(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    full = {**base, "PYTHONPATH": str(REPO / "src"), **env}
    return subprocess.run(
        [sys.executable, "-m", "feedpipe", *args], capture_output=True, text=True, env=full
    )


def test_version_names_the_store_migration() -> None:
    done = feedpipe("--version")
    assert done.returncode == 0
    assert done.stdout == f"feedpipe 0.1.0 (store schema: migration {HEAD_REVISION})\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_clicks_own(shell: str) -> None:
    done = feedpipe("completion", shell)
    assert done.returncode == 0 and "_FEEDPIPE_COMPLETE" in done.stdout
    if shell == "bash":
        syntax = subprocess.run(["bash", "-n"], input=done.stdout, text=True)
        assert syntax.returncode == 0


def test_bash_completion_completes_commands() -> None:
    done = feedpipe(_FEEDPIPE_COMPLETE="bash_complete", COMP_WORDS="feedpipe sub", COMP_CWORD="1")
    assert done.stdout.split() == ["plain,subscribers"]


def test_status_lists_n_digest_times_and_says_how_many(tmp_path: Path) -> None:
    post(tmp_path / "posts", "a")
    config = str(write_config(tmp_path, tmp_path / "posts"))
    runner = CliRunner()
    for hour in range(7):
        when = ["--time", f"0{hour}:15", "--timezone", "UTC", "--now", "2026-03-01T00:00:00Z"]
        args = ["--config", config, "subscribers", "add", f"u{hour}@example.com", "--confirmed"]
        added = runner.invoke(cli, [*args, *when])
        assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["--config", config, "subscribers", "list", "--status", "active"])
    assert listed.stdout.splitlines()[-1] == "7 subscribers"
    assert "daily at 00:15 UTC" in listed.stdout
    shown = runner.invoke(cli, ["--config", config, "status", "--now", "2026-03-01T00:00:00Z"])
    assert "(5 of 7 send times shown; --digests N for more)" in shown.stdout
    more = runner.invoke(
        cli, ["--config", config, "status", "--digests", "7", "--now", "2026-03-01T00:00:00Z"]
    )
    assert "shown;" not in more.stdout
    lines = more.stdout.splitlines()
    assert sum(line.startswith("2026-") and " UTC  1" in line for line in lines) == 7
    assert ["daily at 00:15 UTC", "1"] in [re.split(r"\s{2,}", line) for line in lines]
    weekly = ["subscribers", "add", "w@example.com", "--frequency", "weekly", "--weekday", "mon"]
    added = runner.invoke(cli, ["--config", config, *weekly, "--time", "08:00"])
    assert added.exit_code == 0, added.output
    one = runner.invoke(cli, ["--config", config, "subscribers", "list", "--frequency", "weekly"])
    assert one.stdout.splitlines()[-1] == "1 subscriber"
    assert "weekly on Monday at 08:00" in one.stdout


def rules_match_headers(text: str) -> int:
    """Every table is textgrid's: an upper-case header row, then a rule of dashes under each
    column; the number of tables found."""
    lines = text.splitlines()
    found = 0
    for above, line in itertools.pairwise(lines):
        if line and set(line) <= {"-", " "}:
            assert above == above.upper(), above
            starts = [i for i, c in enumerate(line) if c == "-" and (i == 0 or line[i - 1] == " ")]
            assert all(above[i] != " " and (i == 0 or above[i - 1] == " ") for i in starts), text
            found += 1
    return found


def test_every_table_has_one_style(tmp_path: Path) -> None:
    """status, outbox, subscribers list, digest plan and check-config print textgrid tables."""
    post(tmp_path / "posts", "a", categories="[Rust]")
    config = str(write_config(tmp_path, tmp_path / "posts"))
    add = ["subscribers", "add", "ann@example.com", "--confirmed", "--time", "08:00"]
    assert feedpipe("--config", config, *add, "--now", "2026-03-01T00:00:00Z").returncode == 0
    assert feedpipe("--config", config, "sync").returncode == 0
    commands = {
        ("status", "--now", "2026-03-01T00:00:00Z"): 5,  # jobs, outbox, due, schedules, rates
        ("outbox",): 1,
        ("subscribers", "list"): 1,
        ("digest", "plan", "--now", "2026-03-01T09:00:00Z"): 1,
        ("check-config",): 1,
    }
    for args, tables in commands.items():
        done = feedpipe("--config", config, *args)
        assert rules_match_headers(done.stdout) == tables, (args, done.stdout, done.stderr)
    listed = feedpipe("--config", config, "subscribers", "list").stdout
    assert listed.splitlines()[-1] == "1 subscriber"
