"""Local file faults say what failed: a read-only or full outbox folder (the .eml transport) is
not an unreachable mail server, and a full disk under the feeds or the store leaves the previous
state and says so. Real tmpfs mounts when this runs as root; else the OSError is injected at the
file-write boundary (the outbox tests) or the test skips (feeds, store)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedpipe.cli import cli
from feedpipe.errors import FeedWriteError, StoreError
from feedpipe.feeds.writer import write_if_changed
from feedpipe.mail import files
from feedpipe.model import OutboxState
from feedpipe.store import SqlStore
from tests.outbox_helpers import add_subscribers, edition, queue, settings
from tests.worker_helpers import worker_config


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at `path` with `options` (e.g. "ro" or "size=64k") for the block."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_up(folder: Path) -> Path:
    """A file that takes every free byte of `folder`'s file system."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):  # down to the last byte
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def send(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "send", *args])


def outbox_site(tmp_path: Path, count: int) -> tuple[Path, str]:
    url = f"sqlite:///{tmp_path / 'fp.db'}"
    (tmp_path / "posts").mkdir()
    config = worker_config(tmp_path, tmp_path / "posts", url)
    with SqlStore.open(url) as store:
        ids = add_subscribers(store, count)
        assert queue(store, edition(settings(tmp_path, url)), ids)[1] == count
    return config, url


def counts(url: str) -> dict[OutboxState, int]:
    with SqlStore.open(url) as store:
        return store.outbox_counts()


def failing_write(code: int) -> object:
    def write(path: Path, data: bytes) -> None:
        raise OSError(code, os.strerror(code), str(path))

    return write


@contextmanager
def outbox_fault(eml: Path, code: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The outbox folder read-only (EROFS) or full (ENOSPC): mounted when possible, else the
    error raised where the transport writes a file."""
    if not can_mount():
        monkeypatch.setattr(files, "write_atomic", failing_write(code))
        yield
        monkeypatch.undo()
        return
    options = "ro" if code == errno.EROFS else "size=64k"
    with tmpfs(eml, options):
        if code == errno.ENOSPC:
            fill_up(eml)
        yield


@pytest.mark.parametrize(
    ("code", "said"),
    [(errno.EROFS, "Read-only file system"), (errno.ENOSPC, "No space left on device")],
)
def test_an_unwritable_outbox_folder_is_named_as_such_exits_1_and_keeps_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, said: str
) -> None:
    config, url = outbox_site(tmp_path, 30)
    eml = tmp_path / "eml"
    with outbox_fault(eml, code, monkeypatch):
        result = send(config)
        assert result.exit_code == 1, result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith("feedpipe: nothing could be written to the outbox folder: ")
        assert f"cannot write {eml}/" in line and said in line
        assert "mail server" not in line
        assert counts(url)[OutboxState.RETRY] == 30  # nothing lost
        status = CliRunner().invoke(cli, ["--config", str(config), "status"])
        assert "nothing could be written to the outbox folder" in status.stdout
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()  # past the retry backoff
    again = send(config, "--now", later)  # the folder is writable again
    assert again.exit_code == 0, again.output
    assert counts(url)[OutboxState.SENT] == 30
    assert len(list(eml.glob("*.eml"))) == 30


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a small tmpfs")
def test_a_full_disk_under_the_feeds_keeps_the_previous_file_and_says_so(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "out", "size=256k") as out:
        assert write_if_changed(out, "feed.xml", b"<old/>")
        filler = fill_up(out)
        with pytest.raises(FeedWriteError) as raised:
            write_if_changed(out, "feed.xml", b"<new>" + b"x" * 100_000 + b"</new>")
        assert str(raised.value) == (
            f"cannot write {out / 'feed.xml'}: No space left on device; "
            "the previous version is unchanged"
        )
        assert (out / "feed.xml").read_bytes() == b"<old/>"
        assert sorted(p.name for p in out.iterdir()) == ["feed.xml", "filler"]  # no temp left
        filler.unlink()
        assert write_if_changed(out, "feed.xml", b"<new/>")


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a small tmpfs")
def test_a_full_disk_under_the_store_rolls_back_and_says_so(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "db", "size=1m") as folder:
        url = f"sqlite:///{folder / 'fp.db'}"
        with SqlStore.open(url) as store:
            add_subscribers(store, 10)
            fill_up(folder)
            with pytest.raises(StoreError) as raised:
                add_subscribers(store, 20_000, start=10)
            assert "full" in str(raised.value)
            assert str(raised.value).endswith("nothing was written: the store is as it was")
            assert len(store.subscribers()) == 10
