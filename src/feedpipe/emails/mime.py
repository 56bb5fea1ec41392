"""Delivery-ready MIME bytes: one template per edition, per-recipient messages by substitution."""

from __future__ import annotations

import binascii
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.utils import format_datetime
from operator import itemgetter

from feedpipe.emails.text import truncate
from feedpipe.errors import ValidationError
from feedpipe.model import Recipient
from feedpipe.model.text import clean_line

BODY_FIELDS = ("name", "greeting", "intro", "email", "unsubscribe_url", "preferences_url")
NAME_MARK = "\ue000"  # private-use character standing for the name inside the greeting
NAME_CHARS = 80
MAX_URL = 900  # keeps List-Unsubscribe under the 998-byte line limit
SLOT_RESERVE = 400  # bytes allowed per placeholder when checking the size limit
_TOKEN = rb"@@fp-(?P<marker>[0-9a-f]{12})-(?P<ctx>[a-z]{1,2}):(?P<field>[a-z_]+)@@"
_TOKEN_RE = re.compile(_TOKEN)
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_MSGID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_URL_SAFE = re.compile(r"[!#-;=?-~]+")  # printable ASCII except space, " < >
_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][!#-;=?-~]*)?")


@dataclass(frozen=True, slots=True)
class EditionHeaders:
    """The headers shared by every message of an edition (values not yet encoded)."""

    from_name: str
    from_address: str
    subject: str
    list_id: str  # "<id>" part only, e.g. digest.blog.example.com
    list_name: str
    unsubscribe_mailto: str | None = None
    reply_to: str | None = None
    feedback_id: str | None = None


@dataclass(frozen=True, slots=True)
class MimeTemplate:
    """An edition's complete message as bytes, with placeholders cut out for fast substitution."""

    data: bytes
    marker: str
    greeting_named: str  # the rendered greeting with NAME_MARK where the name goes
    greeting_anon: str  # the rendered greeting for recipients without a name
    chunks: tuple[bytes, ...]
    slots: tuple[tuple[str, str], ...]  # (context, field) between consecutive chunks
    distinct_slots: frozenset[tuple[str, str]]
    splice: Splice = field(compare=False, repr=False)  # how messages are assembled (derived)
    intro_first: str = ""  # the rendered introduction of a subscriber's first digest
    intro_next: str = ""  # … and of every later one

    @classmethod
    def parse(
        cls,
        data: bytes,
        marker: str,
        greeting_named: str,
        greeting_anon: str,
        intros: tuple[str, str] = ("", ""),
    ) -> MimeTemplate:
        """Split `data` at its placeholders (those carrying `marker`); `intros` are the
        (first digest, later digest) introductions."""
        chunks: list[bytes] = []
        slots: list[tuple[str, str]] = []
        last = 0
        for match in _TOKEN_RE.finditer(data):
            if match["marker"].decode() != marker:
                continue
            chunks.append(data[last : match.start()])
            slots.append((match["ctx"].decode(), match["field"].decode()))
            last = match.end()
        chunks.append(data[last:])
        splice = Splice.build(chunks, slots, greeting_anon, intros)
        return cls(
            data,
            marker,
            greeting_named,
            greeting_anon,
            tuple(chunks),
            tuple(slots),
            frozenset(slots),
            splice,
            *intros,
        )

    def dump(self) -> bytes:
        """A self-contained serialisation (for storing an edition): JSON line, then the bytes."""
        meta = {
            "marker": self.marker,
            "named": self.greeting_named,
            "anon": self.greeting_anon,
            "first": self.intro_first,
            "next": self.intro_next,
        }
        return json.dumps(meta).encode() + b"\n" + self.data

    @classmethod
    def load(cls, blob: bytes) -> MimeTemplate:
        """The inverse of `dump`."""
        head, _, data = blob.partition(b"\n")
        meta = json.loads(head)
        intros = (meta.get("first", ""), meta.get("next", ""))  # absent in older editions
        return cls.parse(data, meta["marker"], meta["named"], meta["anon"], intros)

    @property
    def size_bound(self) -> int:
        """An upper estimate of any personalised message's size in bytes."""
        return len(self.data) + len(self.slots) * SLOT_RESERVE


def token(marker: str, field: str) -> str:
    """The placeholder templates receive for a recipient field."""
    return f"@@fp-{marker}-{field}@@"


def build_template(
    headers: EditionHeaders,
    text: str,
    html: str,
    marker: str,
    boundary: str,
    greetings: tuple[str, str],
    intros: tuple[str, str] = ("", ""),
) -> MimeTemplate:
    """The edition's message: headers, then multipart/alternative (text, then HTML), both QP."""
    head = _header_block(headers, marker)
    part_head = '--{b}\r\nContent-Type: text/{t}; charset="utf-8"\r\n'
    part_head += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    data = b"".join(
        (
            head.encode("ascii"),
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode(),
            part_head.format(b=boundary, t="plain").encode(),
            _encode_body(text, marker, _text_context),
            b"\r\n",
            part_head.format(b=boundary, t="html").encode(),
            _encode_body(html, marker, _html_context),
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
    return MimeTemplate.parse(data, marker, *greetings, intros)


def fold(name: str, value: str) -> str:
    """One header, RFC 2047-encoded where not ASCII, folded at 78 columns, CRLF-terminated."""
    return str(policy.SMTP.header_factory(name, value).fold(policy=policy.SMTP))


def subject_header(subject: str) -> str:
    """The Subject line: plain ASCII folded as it is; anything else (and ASCII that looks like
    an RFC 2047 encoded word, `=?…?=`) as UTF-8 encoded words split between characters, so a
    reader shows exactly the characters written (the stdlib folder can drop the space between
    two encoded words, and would let `=?…?=` text be decoded)."""
    text = clean_line(subject)
    if text.isascii() and "=?" not in text:
        return fold("Subject", text)
    return "Subject: " + "\r\n ".join(_encoded_words(text, 39)) + "\r\n"


def _header_block(h: EditionHeaders, marker: str) -> str:
    slot = "@@fp-" + marker + "-h:{}@@"
    lines = [
        fold("From", str(Address(clean_line(h.from_name), addr_spec=h.from_address))),
        f"To: {slot.format('to')}\r\n",
        subject_header(h.subject),
        f"Date: {slot.format('date')}\r\n",
        f"Message-ID: {slot.format('message_id')}\r\n",
        "MIME-Version: 1.0\r\n",
    ]
    if h.reply_to:
        lines.append(fold("Reply-To", str(Address(addr_spec=h.reply_to))))
    lines += [
        fold("List-Id", f"{_phrase(h.list_name)} <{h.list_id}>"),
        list_unsubscribe(slot.format("unsubscribe_url"), h.unsubscribe_mailto),
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        "Precedence: bulk\r\n",
        "Auto-Submitted: auto-generated\r\n",
    ]
    if h.feedback_id:
        lines.append(fold("Feedback-ID", clean_line(h.feedback_id)))
    return "".join(lines)


def _phrase(text: str) -> str:
    """A display phrase: plain ASCII words as they are, anything else quoted."""
    text = clean_line(text)
    if _ATOM_PHRASE.fullmatch(text) or not text.isascii():
        return text  # non-ASCII phrases become encoded words when folded
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode_body(body: str, marker: str, context: Callable[[str, int], str]) -> bytes:
    """`body` quoted-printable, each placeholder alone between soft line breaks."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    body = body if body.endswith("\n") else body + "\n"
    raw = re.compile("@@fp-" + marker + r"-(\w+)@@")
    pieces: list[bytes] = []
    last = 0
    for match in raw.finditer(body):
        if match[1] not in BODY_FIELDS:
            raise ValidationError(f"unknown recipient placeholder {match[1]!r} in a template")
        pieces.append(qp(body[last : match.start()]))
        ctx = context(body, match.start())
        pieces.append(f"=\r\n@@fp-{marker}-{ctx}:{match[1]}@@=\r\n".encode())
        last = match.end()
    if body.lower().count(marker) != len(pieces) // 2:
        raise ValidationError("a template changed a recipient value with a filter; use it as is")
    pieces.append(qp(body[last:]))
    return b"".join(pieces)


def qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends; the last line leaves room for a soft break."""
    encoded = binascii.b2a_qp(text.encode("utf-8") + b"X", istext=True)[:-1]
    return encoded.replace(b"\n", b"\r\n")


def _text_context(body: str, pos: int) -> str:
    return "t"


def _html_context(body: str, pos: int) -> str:
    """ "ha" inside a tag (an attribute value), "ht" in text."""
    return "ha" if body.rfind("<", 0, pos) > body.rfind(">", 0, pos) else "ht"


def escape_text(value: str) -> str:
    """HTML text escaping as html5ever serialises it (so substitution equals a full render)."""
    return (
        value.replace("&", "&amp;")
        .replace("\xa0", "&nbsp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def escape_attr(value: str) -> str:
    """HTML attribute escaping as html5ever serialises it."""
    return value.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace('"', "&quot;")


def clean_name(name: str | None) -> str:
    """A display name on one line, without control characters, at most 80 characters."""
    return truncate(clean_line((name or "").replace(NAME_MARK, "")), NAME_CHARS)


def greeting_name(name: str, given_name: str | None = None) -> str:
    """What the greeting calls a reader: the given name they chose ("What should we call
    you?"), cleaned as names are; else their (cleaned) name when it is one word ("Ann",
    "Søren", "山田太郎"); else "" (the greeting without a name), because which word of a
    longer name is the given name differs between cultures (family name first in Chinese,
    Japanese, Korean or Hungarian names; compound given names; particles) and a guess can be
    rude. The To header keeps the whole name."""
    given = clean_name(given_name) if given_name else ""  # most have none: no cleaning
    if given:
        return given
    return name if name and len(name.split()) == 1 else ""


def check_address(address: str) -> str:
    """An ASCII addr-spec with nothing that could end or fold a header line."""
    if not _ADDRESS.fullmatch(address) or ".." in address:
        raise ValidationError(f"{address!r} is not a deliverable ASCII email address")
    return address


def check_url(url: str) -> str:
    """An absolute http(s) URL of printable ASCII without spaces, quotes or angle brackets."""
    if not _HTTP_URL.fullmatch(url) or len(url) > MAX_URL:
        raise ValidationError(f"{url!r} is not an absolute http(s) URL usable in an email")
    return url


def check_message_id(message_id: str) -> str:
    """`<left@right>` (brackets added when missing), printable ASCII only."""
    value = message_id if message_id.startswith("<") else f"<{message_id}>"
    if not _MSGID.fullmatch(value):
        raise ValidationError(f"{message_id!r} is not a Message-ID")
    return value


def format_to(name: str, address: str) -> str:
    """The To header value: the name as an RFC 2047 encoded word when not plain ASCII, or when
    it contains "=?" (a name typed as `=?utf-8?q?Admin?=` must read as typed, not be decoded:
    readers decode encoded words even inside quotes, so it is encoded itself)."""
    if not name:
        return address
    if name.isascii() and "=?" not in name:
        return f"{_phrase(name)} <{address}>"
    return " ".join(_encoded_words(name)) + f" <{address}>"


def _encoded_words(text: str, size: int = 45) -> Iterator[str]:
    """`=?utf-8?b?...?=` words of at most `size` UTF-8 bytes each, split between characters."""
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > size:
            yield _b_word(chunk)
            chunk = b""
        chunk += data
    if chunk:
        yield _b_word(chunk)


def _b_word(data: bytes) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode() + "?="


def list_unsubscribe(url: str, mailto: str | None) -> str:
    """The RFC 8058 header: `<https://…>,` then, on a folded line, `<mailto:…>`."""
    if not mailto:
        return f"List-Unsubscribe: <{url}>\r\n"
    if not _URL_SAFE.fullmatch(mailto):
        raise ValidationError(f"{mailto!r} is not usable as an unsubscribe mailto address")
    return f"List-Unsubscribe: <{url}>,\r\n <mailto:{mailto.removeprefix('mailto:')}>\r\n"


@functools.lru_cache(maxsize=256)
def _date_header(date: datetime) -> str:
    """RFC 5322 date (many messages of a batch share their send time)."""
    return format_datetime(date)


def encode_slot(ctx: str, value: str) -> bytes:
    """A value encoded for the place of its placeholder."""
    if ctx == "h":
        return value.encode("ascii")
    if ctx == "ht":
        value = escape_text(value)
    elif ctx == "ha":
        value = escape_attr(value)
    return qp(value)


def personalize_template(
    template: MimeTemplate,
    recipient: Recipient,
    message_id: str,
    date: datetime,
) -> bytes:
    """One recipient's message: the template with each placeholder replaced by its value.

    The name cleaned, the address, URLs and Message-ID checked (ValidationError for unsafe
    values), each value encoded by `encode_slot` for its context; what every recipient
    shares (introductions, the greeting without a name) is encoded once per template, and a
    value used in several places is encoded once (tests/mime_reference.py is the plain
    version this must equal byte for byte)."""
    splice = template.splice
    name = clean_name(recipient.name) if recipient.name else ""
    called = greeting_name(name, recipient.given_name)
    email = check_address(recipient.email)
    unsubscribe = check_url(recipient.unsubscribe_url)
    preferences = check_url(recipient.preferences_url)
    if date.tzinfo is None:
        raise ValidationError("the Date of a message must be timezone-aware")
    parts = (splice.first if recipient.first else splice.later).copy()
    parts[splice.to] = format_to(name, email).encode("ascii")
    parts[splice.date] = _date_bytes(date)
    parts[splice.message_id] = check_message_id(message_id).encode("ascii")
    parts[splice.unsubscribe_header] = unsubscribe.encode("ascii")
    if called:
        greeting = template.greeting_named.replace(NAME_MARK, called)
        for ctx, at in splice.fields["greeting"]:
            parts[at] = encode_slot(ctx, greeting)
    for ctx, at in splice.fields["name"]:
        parts[at] = encode_slot(ctx, name)
    _put_plain(parts, splice.fields["email"], email)
    _put_plain(parts, splice.fields["unsubscribe_url"], unsubscribe)
    _put_plain(parts, splice.fields["preferences_url"], preferences)
    return b"".join(splice.order(parts))


def _put_plain(parts: list[bytes], slots: Sequence[tuple[str, int]], value: str) -> None:
    """A checked address or URL into its body slots: such a value has no `"`, `<`, `>` or
    no-break space, so both HTML escapings of it are its `&` escaped (what `encode_slot`
    makes of it, without calling it for each context)."""
    if not slots:
        return
    plain = qp(value)
    html = qp(value.replace("&", "&amp;")) if "&" in value else plain
    for ctx, at in slots:
        parts[at] = plain if ctx == "t" else html


@functools.lru_cache(maxsize=256)
def _date_bytes(date: datetime) -> bytes:
    return _date_header(date).encode("ascii")


HEADER_SLOTS = ("to", "date", "message_id", "unsubscribe_url")


@dataclass(frozen=True, slots=True)
class Splice:
    """A template's message as a list to fill: its chunks, then one entry per distinct slot
    (those every recipient shares already encoded), then a spare entry that the slots a
    template lacks point to; `order` picks chunk, slot, chunk, … out of a filled copy."""

    first: list[bytes]  # for a subscriber's first digest
    later: list[bytes]  # … and for every later one
    order: Callable[[list[bytes]], tuple[bytes, ...]]
    to: int
    date: int
    message_id: int
    unsubscribe_header: int
    fields: dict[str, tuple[tuple[str, int], ...]]  # body field → its (context, index) pairs

    @classmethod
    def build(
        cls,
        chunks: Sequence[bytes],
        slots: Sequence[tuple[str, str]],
        greeting_anon: str,
        intros: tuple[str, str],
    ) -> Splice:
        distinct = list(dict.fromkeys(slots))
        at = {slot: len(chunks) + i for i, slot in enumerate(distinct)}
        spare = len(chunks) + len(distinct)
        base = [*chunks, *(b"" for _ in distinct), b""]
        first, later = list(base), list(base)
        for (ctx, name), index in at.items():
            if ctx != "h" and name == "greeting":
                first[index] = later[index] = encode_slot(ctx, greeting_anon)
            elif ctx != "h" and name == "intro":
                first[index], later[index] = (encode_slot(ctx, text) for text in intros)
        order = [i // 2 if i % 2 == 0 else at[slots[i // 2]] for i in range(2 * len(slots) + 1)]
        body = {
            name: tuple((ctx, i) for (ctx, slot), i in at.items() if slot == name and ctx != "h")
            for name in BODY_FIELDS
        }
        header = {name: at.get(("h", name), spare) for name in HEADER_SLOTS}
        return cls(
            first,
            later,
            itemgetter(*order) if len(order) > 1 else lambda parts: (parts[0],),
            header["to"],
            header["date"],
            header["message_id"],
            header["unsubscribe_url"],
            body,
        )
