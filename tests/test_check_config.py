"""`feedpipe check-config` checks what a run will need and prints the effective settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedpipe.cli import cli
from feedpipe.store.engine import HEAD_REVISION
from tests.helpers import post
from tests.smtp_servers import RecordingHandler, serve

REPO = Path(__file__).resolve().parents[1]


def config(root: Path, extra: str = "", *, source: Path | None = None) -> Path:
    posts = root / "posts"
    if source is None:
        post(posts, "a")
    path = root / "config.toml"
    path.write_text(
        '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{source or posts}"\n[store]\nurl = "sqlite:///{root / "fp.db"}"\n'
        f'[feeds]\noutput_dir = "{root / "out"}"\n{extra}',
        encoding="utf-8",
    )
    return path


def check(path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(path), "check-config", *args], env=env)


def finding(result: Result, key: str) -> list[str]:
    """The (level, text) of the finding about `key`."""
    for line in result.stdout.splitlines():
        level, _, rest = line.partition("  ")
        if rest.strip().startswith(key):
            return [level.strip(), rest.strip()[len(key) :].strip()]
    raise AssertionError(f"no finding for {key} in\n{result.stdout}")


def test_a_good_config_passes_and_prints_every_section(tmp_path: Path) -> None:
    path = config(tmp_path)
    result = check(path)
    assert result.exit_code == 0, result.output
    assert finding(result, "[source] path") == ["ok", f"{tmp_path / 'posts'}: 1 Markdown file"]
    assert finding(result, "[store] url")[1].endswith("no schema yet; the first command creates it")
    assert not (tmp_path / "fp.db").exists()  # checking creates nothing
    for section in ("[site]", "[source]", "[store]", "[feeds]", "[digest]", "[email]"):
        assert section in result.stdout.splitlines()
    for section in ("[email.smtp]", "[web]", "[worker]", "[environment]"):
        assert section in result.stdout.splitlines()
    assert CliRunner().invoke(cli, ["--config", str(path), "sync"]).exit_code == 0
    migrated = finding(check(path), "[store] url")
    assert migrated[0] == "ok" and f"at migration {HEAD_REVISION} (current)" in migrated[1]


def test_a_missing_source_folder_is_an_error_with_exit_2(tmp_path: Path) -> None:
    result = check(config(tmp_path, source=tmp_path / "nowhere"))
    assert result.exit_code == 2
    level, text = finding(result, "[source] path")
    assert level == "error" and f"{tmp_path / 'nowhere'} does not exist" in text
    assert result.stderr == "feedpipe: check-config: 1 problem (marked error above)\n"


def test_an_output_dir_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    path = config(tmp_path)
    (tmp_path / "out").write_text("not a folder", encoding="utf-8")
    result = check(path)
    assert result.exit_code == 2
    assert finding(result, "[feeds] output_dir")[0] == "error"


def test_an_unusable_dkim_key_is_an_error(tmp_path: Path) -> None:
    key = tmp_path / "dkim.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n", encoding="utf-8")
    extra = f'[email]\ndkim_key_path = "{key}"\ndkim_selector = "mail"\ndkim_domain = "b.example"\n'
    result = check(config(tmp_path, extra))
    assert result.exit_code == 2
    level, text = finding(result, "[email] dkim_key_path")
    assert level == "error" and "not a usable DKIM key" in text


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1 is loopback and it is http:"),
        ("https://10.1.2.3", "10.1.2.3 is a private address"),
        ("https://localhost:8443", "localhost is a local name"),
        ("http://news.example.com", "it is http:, not https:"),
    ],
)
def test_a_base_url_readers_cannot_reach_warns_with_a_real_transport(
    tmp_path: Path, base_url: str, why: str
) -> None:
    extra = f'[email]\ntransport = "smtp"\n[web]\nbase_url = "{base_url}"\n'
    result = check(config(tmp_path, extra))
    assert result.exit_code == 0, result.output
    level, text = finding(result, "[web] base_url")
    assert level == "warn" and why in text and "unsubscribe" in text
    assert "1 warning; everything a run needs is in place" in result.stdout
    local = check(config(tmp_path, f'[web]\nbase_url = "{base_url}"\n'))  # .eml files only
    assert finding(local, "[web] base_url")[0] == "ok"


def test_a_public_https_base_url_is_fine(tmp_path: Path) -> None:
    extra = '[email]\ntransport = "smtp"\n[web]\nbase_url = "https://news.example.com"\n'
    result = check(config(tmp_path, extra))
    assert finding(result, "[web] base_url") == ["ok", "https://news.example.com is public"]


def test_secrets_are_masked(tmp_path: Path) -> None:
    path = config(tmp_path, '[email]\ntransport = "smtp"\n[email.smtp]\nusername = "mailer"\n')
    env = {"FEEDPIPE_SMTP_PASSWORD": "hunter2", "FEEDPIPE_SECRET_KEY": "s3cret-key"}
    result = check(path, env=env)
    assert "hunter2" not in result.output and "s3cret-key" not in result.output
    assert 'password = "*** (from $FEEDPIPE_SMTP_PASSWORD)"' in result.stdout
    assert "FEEDPIPE_SECRET_KEY: set" in result.stdout


def run_cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    env["PYTHONPATH"] = str(REPO / "src")
    return subprocess.run(
        [sys.executable, "-m", "feedpipe", "--config", str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port


def smtp_config(root: Path, port: int) -> Path:
    smtp = f'host = "127.0.0.1"\nport = {port}\nconnect_timeout_seconds = 1\n'
    return config(root, f'[email]\ntransport = "smtp"\n[email.smtp]\n{smtp}')


def test_connect_opens_a_real_session(tmp_path: Path) -> None:
    with serve(RecordingHandler()) as server:
        done = run_cli(smtp_config(tmp_path, server.port), "check-config", "--connect")
    assert done.returncode == 0, done.stderr
    assert f"127.0.0.1:{server.port}: greeting, EHLO ok" in done.stdout


def test_connect_to_a_closed_port_is_an_error_naming_it(tmp_path: Path, closed_port: int) -> None:
    path = smtp_config(tmp_path, closed_port)
    assert run_cli(path, "check-config").returncode == 0  # resolving alone passes
    done = run_cli(path, "check-config", "--connect")
    assert done.returncode == 2
    assert f"127.0.0.1:{closed_port} refused the connection (Connection refused" in done.stdout
    assert "Traceback" not in done.stderr
