"""Archive pages cut into runs for the render workers: every page once, in order, balanced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from feedpipe.feeds.history import PageJob, split_jobs
from feedpipe.feeds.render import Paging
from feedpipe.model import FeedSpec

SITE = FeedSpec("site", "", "Site")


@given(st.lists(st.integers(0, 50), max_size=60), st.integers(1, 8))
def test_runs_keep_every_page_once_in_order_with_about_equal_posts(
    sizes: list[int], shares: int
) -> None:
    jobs = [PageJob(SITE, n, tuple(range(size)), Paging(n)) for n, size in enumerate(sizes, 1)]
    runs = split_jobs(jobs, shares)
    assert [job for run in runs for job in run] == jobs
    assert len(runs) <= shares and all(runs)
    total = sum(sizes)
    for run in runs[:-1]:  # a run ends at the first page that reaches its share of posts
        assert sum(len(j.ids) for j in run) <= total / shares + max(sizes, default=0)
