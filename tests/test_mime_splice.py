"""The fast personalisation equals the plain one byte for byte, for any recipient values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from feedpipe.emails.mime import MimeTemplate, personalize_template
from feedpipe.emails.render import EmailRenderer
from feedpipe.errors import ValidationError
from feedpipe.model import Recipient
from tests.mime_reference import personalize_reference
from tests.test_email_support import edition, make_post
from tests.test_email_support import settings as site_settings

EVERY_FIELD = ("name", "greeting", "intro", "email", "unsubscribe_url", "preferences_url")
TEXT = "\n".join(f"{f}: {{{{ recipient.{f} }}}}" for f in EVERY_FIELD) + "\n"
HTML = "<html><body>" + "".join(
    f'<p title="{{{{ recipient.{f} }}}}">{{{{ recipient.{f} }}}}</p>' for f in EVERY_FIELD
)
HTML += "</body></html>\n"
ADDRESS_CHARS = "abcXYZ019!#$%&'*+/=?^_`{|}~.-"
T = TypeVar("T")
URL_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>')


def templates(tmp: Path) -> tuple[MimeTemplate, ...]:
    """The default templates, and site templates using every recipient field in text, in
    HTML text and in HTML attributes (each edition stored and loaded, as the outbox does)."""
    (tmp / "digest.txt.j2").write_text(TEXT)
    (tmp / "digest.html.j2").write_text(HTML)
    content = edition([make_post(1, "T & <b>"), make_post(2, "Ünïcode =?x?=")])
    out = []
    for config in (site_settings(), site_settings(templates_dir=str(tmp))):
        rendered = EmailRenderer(config).render_edition(content)
        out += [rendered.template, MimeTemplate.load(rendered.template.dump())]
    return tuple(out)


@pytest.fixture(scope="module")
def every_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[MimeTemplate, ...]:
    return templates(tmp_path_factory.mktemp("site"))


def mostly(valid: st.SearchStrategy[T], other: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """`valid` nine times in ten, else `other` (which a check may refuse)."""
    return st.integers(0, 9).flatmap(lambda n: other if n == 0 else valid)


names = st.one_of(st.none(), st.text(max_size=120), st.sampled_from(["Ann", "Zoë Müller 7"]))
addresses = mostly(
    st.builds(
        lambda a, b: f"{a}@{b}.example",
        st.text(ADDRESS_CHARS, min_size=1, max_size=20),
        st.text("abc-", min_size=1, max_size=8),
    ),
    st.text(max_size=30),
)
urls = mostly(
    st.builds(
        lambda scheme, path: f"{scheme}://news.example.com/{path}",
        st.sampled_from(["http", "https"]),
        st.text(URL_CHARS, max_size=200),
    ),
    st.text(max_size=40),
)
message_ids = mostly(
    st.builds(lambda n: f"<abc.{n}@blog.example.com>", st.integers(0, 10**12)),
    st.text(max_size=30),
)
dates = mostly(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    st.datetimes(),  # naive: refused
)


def outcome(personalise: object, *args: object) -> bytes | type[Exception]:
    try:
        return personalise(*args)  # type: ignore[operator, no-any-return]
    except ValidationError:
        return ValidationError


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    index=st.integers(0, 3),
    name=names,
    given_name=st.one_of(st.none(), st.text(max_size=30)),
    address=addresses,
    unsubscribe=urls,
    preferences=urls,
    first=st.booleans(),
    message_id=message_ids,
    date=dates,
)
def test_fast_path_equals_the_plain_one(
    every_template: tuple[MimeTemplate, ...],
    index: int,
    name: str | None,
    given_name: str | None,
    address: str,
    unsubscribe: str,
    preferences: str,
    first: bool,
    message_id: str,
    date: datetime,
) -> None:
    template = every_template[index]
    who = Recipient(7, address, name, unsubscribe, preferences, first, given_name)
    fast = outcome(personalize_template, template, who, message_id, date)
    event("refused" if fast is ValidationError else "built")
    assert fast == outcome(personalize_reference, template, who, message_id, date)


def test_the_property_reaches_every_slot(every_template: tuple[MimeTemplate, ...]) -> None:
    """The site templates put every field in every context (else the property covers less)."""
    site = every_template[2]
    body = {(ctx, f) for ctx in ("t", "ht", "ha") for f in EVERY_FIELD}
    assert body <= site.distinct_slots
    who = Recipient(1, "a&b@x.example", "Ann", "https://x.example/u?a=1&b=2", "https://x.example/p")
    data = personalize_template(site, who, "<1@x>", datetime(2026, 1, 1, tzinfo=UTC))
    assert data == personalize_reference(site, who, "<1@x>", datetime(2026, 1, 1, tzinfo=UTC))
    assert b"a&amp;b@x.example" in data and b"b=3D2" in data
