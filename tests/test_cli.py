"""The command line: contract names, exit codes, one-line errors, FEEDPIPE_CONFIG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpipe import __version__
from feedpipe.cli import cli
from tests.helpers import post, write_config


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_version_and_help() -> None:
    code, out, _ = run("--version")
    assert code == 0 and __version__ in out
    for command in ([], ["sync"], ["build"]):
        code, out, _ = run(*command, "--help")
        assert code == 0 and "Usage:" in out


def test_python_dash_m_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "feedpipe", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in done.stdout


def test_build_reports_counts_and_writes_feeds(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", categories="[Rust]")
    (posts / "broken.md").write_text("---\ntitle: x\n", encoding="utf-8")
    config = write_config(tmp_path, posts)
    code, out, err = run("--config", str(config), "build")
    assert code == 0
    assert "sync: 1 added, 0 updated, 0 removed, 0 unchanged, 1 skipped" in out
    assert "skipped: broken.md: front matter never closed" in err
    assert err.count("broken.md") == 1  # each file named once
    assert (tmp_path / "out" / "category" / "rust" / "atom.xml").is_file()
    code, out, _ = run("--config", str(config), "build", "--no-sync")
    assert code == 0 and "sync:" not in out and "0 files written" in out


def test_config_from_environment_variable(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a")
    config = write_config(tmp_path, posts)
    code, out, _ = run("sync", env={"FEEDPIPE_CONFIG": str(config)})
    assert code == 0 and "1 added" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[site]\ntitle = 'x'\n", "[site] url: is required"),
        (
            "[site]\ntitle = 'x'\nurl = 'nope'\n",
            "[site] url: 'nope' is not an absolute",
        ),
        ("[site]\ntitle='x'\nurl='https://a.b'\n[feeds]\nmax_items = 0\n", "[feeds] max_items"),
        ("[site]\ntitle='x'\nurl='https://a.b'\n[feeds]\nformats = ['rss', 'xml']\n", "formats"),
        ("[site]\ntitle='x'\nurl='https://a.b'\ntitel = 'typo'\n", "[site] titel: unknown key"),
        ("[site]\ntitle='x'\nurl='https://a.b'\n[digest]\ntimezone='Mars/Base'\n", "IANA"),
        (
            "[site]\ntitle='x'\nurl='https://a.b'\n[digest]\ntimezone='Europe'\n",
            "IANA",
        ),  # a tzdata folder
        ("[site\n", "not valid TOML"),
        ("[site]\ntitle='x'\nurl='https://a.b'\nsecret_key='s'\n", "FEEDPIPE_SECRET_KEY"),
    ],
)
def test_bad_configuration_is_one_clear_line_and_exit_2(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    code, _, err = run("--config", str(config), "sync")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("feedpipe: configuration error: ")
    assert str(config) in err and expected in err


def test_missing_config_file(tmp_path: Path) -> None:
    code, _, err = run("--config", str(tmp_path / "nope.toml"), "build")
    assert code == 2 and "config file not found" in err


def test_missing_source_folder_is_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "missing")
    code, _, err = run("--config", str(config), "sync")
    assert code == 1 and "missing" in err and err.startswith("feedpipe: error:")


def test_sample_config_in_repository_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    code, out, _ = run("--config", str(root / "config.toml"), "check-config")
    assert code == 0 and "Blog 002" in out


def test_a_bad_now_is_a_one_line_error(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a")
    config = write_config(tmp_path, posts)
    for command in (["build"], ["digest", "plan"], ["send"], ["run", "--once"]):
        code, _, err = run("--config", str(config), *command, "--now", "tuesday")
        assert code == 1, command
        assert err.count("\n") == 1
        assert err.startswith("feedpipe: error: --now 'tuesday' is not an ISO 8601 time")


def test_an_unreachable_store_is_one_line_without_the_password(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a")
    config = write_config(tmp_path, posts, "postgresql+psycopg://u:hunter2@127.0.0.1:1/x")
    code, _, err = run("--config", str(config), "sync")
    assert code == 1 and err.count("\n") == 1
    assert "cannot open the store" in err and "hunter2" not in err and "***" in err
