"""The archive files a build keeps are exactly its feeds' pages 1..count in each format."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from feedpipe.feeds.build import _page_names
from feedpipe.feeds.formats import FORMATS
from feedpipe.settings import FeedFormat

NAMES = sorted(f.file_name for f in FORMATS.values())
ALL: list[FeedFormat] = sorted(FORMATS)


def _is_page(name: str, formats: list[FeedFormat], count: int) -> bool:
    """The test of a name the build used before (kept as the reference)."""
    head, dash, tail = name.rpartition("-")
    number, dot, ext = tail.partition(".")
    if not (dash and dot and number.isdigit() and 1 <= int(number) <= count):
        return False
    return str(int(number)) == number and f"{head}.{ext}" in {FORMATS[f].file_name for f in formats}


pieces = st.sampled_from([*(n.rpartition(".")[0] for n in NAMES), "x", "feed-1", ""])
exts = st.sampled_from([*(n.rpartition(".")[2] for n in NAMES), "tmp", "xml.bak", ""])
numbers = st.sampled_from(["0", "1", "2", "7", "01", "12", "x", "", "3a"])


@given(
    head=pieces,
    number=numbers,
    ext=exts,
    formats=st.lists(st.sampled_from(ALL), unique=True),
    count=st.integers(0, 13),
)
def test_a_name_is_kept_exactly_when_it_is_one_of_the_pages(
    head: str, number: str, ext: str, formats: list[FeedFormat], count: int
) -> None:
    for name in (f"{head}-{number}.{ext}", f"{head}-{number}", f"{head}.{ext}", f".tmp-{head}"):
        assert (name in _page_names(formats, count)) == _is_page(name, formats, count), name
