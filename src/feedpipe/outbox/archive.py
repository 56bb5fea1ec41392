"""The public digest archive: one issue per send day, whatever mix of editions readers got.

An *edition* is what one group of readers receives (a section layout: their categories and
new posts); a fill renders many for one send. An *issue* is what the archive lists: every post
mailed in the digests planned on one calendar day of the site (`[digest] timezone`), once,
site-wide, grouped by category. Five readers with five category mixes on one day make five
editions and one issue."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from feedpipe.digests.plan import edition_content, section_layout
from feedpipe.model import DigestPost, EditionContent, Post, SentEdition

ISSUE_SCAN = 20  # editions read per issue listed (a send day rarely has more layouts)


@dataclass(frozen=True, slots=True)
class Issue:
    """One send day of the archive."""

    day: date  # in the site's time zone
    sent_at: datetime  # the last message of the day the server accepted
    post_ids: tuple[int, ...]  # every post mailed that day, once
    edition_keys: tuple[str, ...]  # the editions (layouts) sent that day

    @property
    def key(self) -> str:
        """The issue's archive path segment: the ISO date."""
        return self.day.isoformat()


def send_day(edition: SentEdition, zone: ZoneInfo) -> date:
    """The local day an edition was planned on (its send; older rows: when it was sent)."""
    return (edition.created_at or edition.sent_at).astimezone(zone).date()


def issues(sent: Iterable[SentEdition], zone: ZoneInfo) -> list[Issue]:
    """Sent editions grouped into issues, newest day first; post ids in first-seen order."""
    days: dict[date, list[SentEdition]] = {}
    for edition in sent:
        days.setdefault(send_day(edition, zone), []).append(edition)
    return [_issue(day, days[day]) for day in sorted(days, reverse=True)]


def _issue(day: date, editions: Sequence[SentEdition]) -> Issue:
    ids = dict.fromkeys(i for e in editions for i in e.post_ids)
    return Issue(
        day=day,
        sent_at=max(e.sent_at for e in editions),
        post_ids=tuple(ids),
        edition_keys=tuple(sorted(e.key for e in editions)),
    )


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local day as aware UTC (23 or 25 hours across a DST change)."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def issue_content(issue: Issue, posts: Mapping[int, Post], render_key: str = "") -> EditionContent:
    """The issue as an edition: its posts (those still stored) by category, site-wide, as a
    subscriber of every category would get them."""
    known = [posts[i] for i in issue.post_ids if i in posts]
    light = [_digest_post(p) for p in known]
    layout = section_layout((), light)
    return edition_content(layout, {p.id: p for p in known}, render_key)


def _digest_post(post: Post) -> DigestPost:
    return DigestPost(
        id=post.id,
        first_seen_at=post.first_seen_at,
        published=post.published,
        draft=post.draft,
        removed=False,
        categories=tuple(t.key for t in post.categories),
    )


def parse_day(key: str) -> date | None:
    """An archive key that names an issue ("2026-11-21"), else None (an edition's hash)."""
    if len(key) != 10 or key[4] != "-" or key[7] != "-":
        return None
    try:
        return date.fromisoformat(key)
    except ValueError:
        return None
