"""Plain-text tables for terminals: left-aligned columns, two spaces apart."""

from __future__ import annotations

from collections.abc import Sequence


def _align(rows: Sequence[Sequence[str]]) -> list[str]:
    """Each row as one line, columns padded to their widest cell."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A header row, a rule of dashes under it, then the rows."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    return "\n".join(_align([headers, ["-" * w for w in widths], *rows]))


def plural(count: int, noun: str, many: str | None = None) -> str:
    """ "1 subscriber", "2 subscribers", "0 entries" (with `many` for irregular plurals)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
