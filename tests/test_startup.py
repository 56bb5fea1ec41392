"""Start-up costs only what the command uses: help and version load no heavy library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The database, XML, template, web, mail and validation stacks: each command loads its own.
HEAVY = [
    "sqlalchemy",
    "alembic",
    "lxml",
    "jinja2",
    "starlette",
    "uvicorn",
    "aiosmtplib",
    "pydantic",
]

# Run the console script's `main` in a fresh interpreter, then report which HEAVY packages
# ended up in sys.modules (on stderr, after whatever the command printed).
PROBE = """
import json, sys
sys.argv = ["feedpipe", *sys.argv[1:]]
from feedpipe.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted({name.partition(".")[0] for name in sys.modules} & set(HEAVY))
ours = sorted(name for name in sys.modules if name.startswith("feedpipe."))
print("\\nPROBE " + json.dumps({"code": code, "heavy": heavy, "ours": ours}), file=sys.stderr)
"""


def probe(*args: str, cwd: Path) -> tuple[str, dict[str, list[str]]]:
    """Run `feedpipe ARGS` in a subprocess: its stdout, and the heavy packages ("heavy") and
    feedpipe modules ("ours") it imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("FEEDPIPE_CONFIG", None)
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env=env,
    )
    report = json.loads(done.stderr.rpartition("PROBE ")[2])
    assert report["code"] in (0, None), done.stderr
    return done.stdout, report


def loaded(*args: str, cwd: Path) -> tuple[str, list[str]]:
    """Run `feedpipe ARGS` in a subprocess; its stdout and the heavy packages it imported."""
    out, report = probe(*args, cwd=cwd)
    return out, report["heavy"]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["sync", "--help"],
        ["build", "--help"],
        ["status", "--help"],
        ["send", "--help"],
        ["run", "--help"],
        ["serve", "--help"],
        ["outbox", "retry", "--help"],
        ["subscribers", "add", "--help"],
        ["digest", "preview", "--help"],
    ],
    ids=" ".join,
)
def test_help_and_version_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    out, heavy = loaded(*args, cwd=tmp_path)
    assert heavy == []
    assert (
        ("(store schema: migration " in out)
        if args == ["--version"]
        else ("Usage: feedpipe" in out)
    )


def test_help_still_lists_every_command(tmp_path: Path) -> None:
    out, _ = loaded("--help", cwd=tmp_path)
    commands = out.partition("Commands:")[2].split()
    for name in ("build", "check-config", "digest", "inbound", "outbox", "run", "send"):
        assert name in commands
    for name in ("serve", "status", "subscribers", "sync"):
        assert name in commands


@pytest.mark.parametrize("args", [["--help"], ["--version"]], ids=" ".join)
def test_help_and_version_load_no_command_module(args: list[str], tmp_path: Path) -> None:
    """The commands kept in modules of their own (LAZY) load when one runs: the group's help
    and version import none of them, nor the domain model they use."""
    from feedpipe.cli import LAZY

    _, report = probe(*args, cwd=tmp_path)
    modules = {lazy.module for lazy in LAZY.values()}
    assert modules & set(report["ours"]) == set()
    assert not [name for name in report["ours"] if name.startswith("feedpipe.model")]


def test_help_summaries_of_commands_not_loaded_match_their_own_help() -> None:
    """`--help` lists a command not yet loaded by its LAZY summary; at every width it reads as
    the command's own help would, so the two cannot drift apart."""
    import importlib

    import click

    from feedpipe.cli import LAZY, cli

    for name, lazy in LAZY.items():
        command = getattr(importlib.import_module(lazy.module), lazy.attribute)
        assert isinstance(command, click.Command) and command.name == name
        stand_in = click.Command(name, help=lazy.summary)
        for limit in range(10, 240):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), name
    assert set(cli.list_commands(click.Context(cli))) >= set(LAZY)


def test_a_command_that_runs_loads_what_it_needs(tmp_path: Path) -> None:
    """The laziness is per command: `check-config` validates settings (with msgspec; pydantic
    is only the web API's) and opens the store (SQLAlchemy), and still loads no template, web
    or mail library."""
    config = tmp_path / "config.toml"
    config.write_text('[site]\ntitle = "T"\nurl = "https://example.org/"\n', encoding="utf-8")
    (tmp_path / "posts").mkdir()
    out, heavy = loaded("--config", str(config), "check-config", cwd=tmp_path)
    assert 'title = "T"' in out
    assert heavy == ["sqlalchemy"]


def test_a_send_with_nothing_due_builds_no_renderer(tmp_path: Path) -> None:
    """`send` with an active subscriber and nothing due plans (the store, SQLAlchemy) but asks
    for no edition key, so it loads no template engine and opens no transport."""
    config = tmp_path / "config.toml"
    config.write_text('[site]\ntitle = "T"\nurl = "https://example.org/"\n', encoding="utf-8")
    (tmp_path / "posts").mkdir()
    add = ("--config", str(config), "subscribers", "add", "ada@example.com", "--confirmed")
    loaded(*add, cwd=tmp_path)
    out, heavy = loaded("--config", str(config), "send", cwd=tmp_path)
    assert out.startswith("send: 0 due, 0 queued")
    assert heavy == ["sqlalchemy"]


GC_PROBE = """
import gc, sys
from pathlib import Path
from feedpipe.cli.common import CliState
gc.disable()  # as feedpipe.__main__ does before the command line loads
frozen = gc.get_freeze_count()
with CliState(Path(sys.argv[1])).service() as service:
    print(gc.isenabled(), gc.get_freeze_count() > frozen)
"""


def test_collection_resumes_once_the_command_has_loaded(tmp_path: Path) -> None:
    """The console script pauses garbage collection while modules load; a command that opens
    the service collects again from then on (what was loaded is frozen, not leaked)."""
    config = tmp_path / "config.toml"
    config.write_text('[site]\ntitle = "T"\nurl = "https://example.org/"\n', encoding="utf-8")
    (tmp_path / "posts").mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", GC_PROBE, str(config)],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.stdout.split() == ["True", "True"]
    main = (Path(__file__).parents[1] / "src/feedpipe/__main__.py").read_text()
    assert "gc.disable()" in main.partition("from feedpipe.cli import")[0]
