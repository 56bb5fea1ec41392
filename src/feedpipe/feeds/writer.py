"""Atomic, confined file writes under output_dir: temp file + rename, nothing outside the root."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from feedpipe.errors import FeedWriteError

IOV_MAX = 1024  # buffers per writev (POSIX's minimum is 16; Linux and the BSDs take 1024)


def confined(root: Path, relative: str) -> Path:
    """`root/relative`, refusing any path that would land outside `root`."""
    target = (root / relative).resolve()
    base = root.resolve()
    if target == base or base not in target.parents:
        raise FeedWriteError(f"refusing to write {relative!r}: outside {base}")
    return target


class Output:
    """Atomic writes under one output folder, for one build: each folder is resolved (and
    made) once, not once per file (a build writes tens of thousands of files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root.resolve()
        self._folders: dict[str, Path] = {}
        self._made: set[Path] = set()
        self._serial = 0

    def target(self, relative: str) -> Path:
        """`confined(root, relative)` with the folder resolved once: the file itself is
        resolved only when it is a link."""
        folder, _, name = relative.rpartition("/")
        parent = self._folders.get(folder)
        if parent is None:
            parent = confined(self.root, f"{folder}/.") if folder else self.base
            self._folders[folder] = parent
        target = parent / name
        if name in ("", ".", "..") or target.is_symlink():
            return confined(self.root, relative)
        return target

    def write_if_changed(self, relative: str, data: bytes | Sequence[bytes]) -> bool:
        """Write `data` (bytes, or their parts in order) atomically unless the file already
        holds exactly these bytes."""
        parts = [data] if isinstance(data, bytes) else data
        target = self.target(relative)
        try:
            if target.stat().st_size == sum(map(len, parts)) and target.read_bytes() == b"".join(
                parts
            ):
                return False
        except FileNotFoundError:
            pass
        try:
            self._replace(target, parts)
        except OSError as exc:
            kept = "the previous version is unchanged" if target.exists() else "nothing was written"
            raise FeedWriteError(f"cannot write {target}: {exc.strerror}; {kept}") from exc
        return True

    def _replace(self, target: Path, parts: Sequence[bytes]) -> None:
        """Write a temporary file beside `target` (mode 0644), then rename it over `target`."""
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)
        self._serial += 1
        tmp = target.with_name(f".tmp-{os.getpid()}-{self._serial}{target.suffix}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.fchmod(fd, 0o644)
                _write_all(fd, parts)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _write_all(fd: int, parts: Sequence[bytes]) -> None:
    """Every part to `fd` in order, by as few writev calls as the system allows."""
    views: list[bytes | memoryview] = list(parts)
    at = 0
    while at < len(views):
        written = os.writev(fd, views[at : at + IOV_MAX])
        while at < len(views) and written >= len(views[at]):
            written -= len(views[at])
            at += 1
        if written:  # a short write: the rest of this part next
            views[at] = memoryview(views[at])[written:]


def write_if_changed(root: Path, relative: str, data: bytes | Sequence[bytes]) -> bool:
    """Write `data` atomically under `root` unless the file already holds exactly these bytes."""
    return Output(root).write_if_changed(relative, data)


def read_file(path: Path) -> bytes:
    """The bytes of a file feedpipe may replace (to check it is one of its own)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FeedWriteError(f"cannot read {path}: {exc.strerror}") from exc


def remove_file(root: Path, relative: str) -> bool:
    """Remove one generated file (and its folders, when left empty, up to `root`);
    False if it was not there."""
    target = confined(root, relative)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    base = root.resolve()
    folder = target.parent
    while folder != base and base in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    return True
