"""Scan digests by top folder: a sync compares with the store only the folders that moved."""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from operator import itemgetter

from feedpipe.model.sync import top_folder
from feedpipe.source import Stat

_KEY = itemgetter(0)


def by_folder(stats: Sequence[Stat]) -> dict[str, list[Stat]]:
    """`stats` (sorted by key) by top folder, each in key order. A folder's keys are one run
    of the sorted list (all start with "folder/", and "0" is the character after "/"), so
    each run's end is found by bisection, not by looking at every key."""
    out: dict[str, list[Stat]] = {}
    start, end = 0, len(stats)
    while start < end:
        folder = top_folder(stats[start][0])
        if not folder:
            out.setdefault("", []).append(stats[start])
            start += 1
            continue
        stop = bisect_left(stats, f"{folder}0", start, end, key=_KEY)
        out[folder] = list(stats[start:stop])
        start = stop
    return out


def digest(stats: Sequence[Stat]) -> str:
    """sha256 of every document's key and stat, in order."""
    lines = "".join(f"{key}\0{size}\0{mtime}\n" for key, size, mtime in stats)
    return hashlib.sha256(lines.encode("utf-8", "surrogatepass")).hexdigest()


def folder_digests(folders: Mapping[str, Sequence[Stat]]) -> dict[str, str]:
    return {folder: digest(stats) for folder, stats in folders.items()}


def load(text: str | None) -> dict[str, str] | None:
    """The folder digests the last complete sync stored; None when there are none (no sync
    finished, one is under way, or an older version stored one digest for everything)."""
    if not text or not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def dump(digests: Mapping[str, str]) -> str:
    return json.dumps(dict(digests), sort_keys=True)


def moved(digests: Mapping[str, str], stored: Mapping[str, str]) -> list[str]:
    """The folders whose digest is not the stored one: new, changed or gone."""
    return sorted(f for f in digests.keys() | stored.keys() if digests.get(f) != stored.get(f))
