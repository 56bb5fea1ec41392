"""Atomic, confined file writes under output_dir: temp file + rename, nothing outside the root."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from feedpipe.errors import FeedWriteError


def confined(root: Path, relative: str) -> Path:
    """`root/relative`, refusing any path that would land outside `root`."""
    target = (root / relative).resolve()
    base = root.resolve()
    if target == base or base not in target.parents:
        raise FeedWriteError(f"refusing to write {relative!r}: outside {base}")
    return target


def write_if_changed(root: Path, relative: str, data: bytes) -> bool:
    """Write `data` atomically unless the file already holds exactly these bytes."""
    target = confined(root, relative)
    try:
        if target.stat().st_size == len(data) and target.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        kept = "the previous version is unchanged" if target.exists() else "nothing was written"
        raise FeedWriteError(f"cannot write {target}: {exc.strerror}; {kept}") from exc
    return True


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
