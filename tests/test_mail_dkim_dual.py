"""DKIM with Ed25519 (RFC 8463), alone and beside RSA: every signature verifies with dkimpy."""

from __future__ import annotations

import base64
import email
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from feedpipe.emails.mime import MimeTemplate, personalize_template
from feedpipe.errors import ConfigError, ValidationError
from feedpipe.mail import DkimSigner
from feedpipe.mail.canon import relaxed_fields
from feedpipe.settings import Settings
from tests.test_email_support import recipient
from tests.test_mail_dkim import DOMAIN, SELECTOR, digest_bytes, dkim_settings
from tests.test_mail_smtp import NOW

ED_SELECTOR = "fp2026ed"
SIGNED = [
    "from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
    "list-unsubscribe-post", "mime-version", "content-type", "feedback-id", "from",
]  # fmt: skip
Dns = Callable[..., bytes | None]


def write_key(path: Path, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(RSA-2048, Ed25519) private key files."""
    folder = tmp_path_factory.mktemp("dkim-dual")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        write_key(folder / "rsa.pem", rsa_key),
        write_key(folder / "ed.pem", ed25519.Ed25519PrivateKey.generate()),
    )


def dual_settings(keys: tuple[Path, Path], base: Settings | None = None) -> Settings:
    return dkim_settings(
        keys[0], base, dkim_ed25519_key_path=keys[1], dkim_ed25519_selector=ED_SELECTOR
    )


@pytest.fixture(scope="module")
def dual(key_files: tuple[Path, Path]) -> DkimSigner:
    signer = DkimSigner.from_settings(dual_settings(key_files).email)
    assert signer is not None
    return signer


def dns_for(signer: DkimSigner) -> Dns:
    """A DNS stub answering each selector's TXT record, as `feedpipe dkim-record` prints it."""
    records = {f"{signer.record_name(k)}.".encode(): k.record().encode() for k in signer.keys}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return lookup


def signatures(signed: bytes) -> list[dict[str, str]]:
    """The tags of each DKIM-Signature field, top first."""
    parsed = email.message_from_bytes(signed, policy=policy.default)
    return [
        dict(p.strip().split("=", 1) for p in "".join(str(v).split()).split(";") if p.strip())
        for v in parsed.get_all("DKIM-Signature") or []
    ]


def verifies(signed: bytes, dns: Dns, count: int) -> list[bool]:
    assert len(signatures(signed)) == count
    return [bool(dkim.DKIM(signed).verify(idx=i, dnsfunc=dns)) for i in range(count)]


def test_dual_signing_adds_rsa_then_ed25519_both_verify_and_cover_the_list(
    dual: DkimSigner,
) -> None:
    signed = dual.sign(digest_bytes())
    rsa_tags, ed_tags = signatures(signed)
    assert (rsa_tags["a"], rsa_tags["s"]) == ("rsa-sha256", SELECTOR)
    assert (ed_tags["a"], ed_tags["s"]) == ("ed25519-sha256", ED_SELECTOR)
    for tags in (rsa_tags, ed_tags):
        assert tags["h"].split(":") == SIGNED and tags["d"] == DOMAIN
        assert tags["c"] == "relaxed/relaxed"
    assert rsa_tags["bh"] == ed_tags["bh"]
    assert len(base64.b64decode(ed_tags["b"])) == 64
    assert verifies(signed, dns_for(dual), 2) == [True, True]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"List-Unsubscribe: <https://", b"List-Unsubscribe: <https://evil."),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"),
        (b"\r\nFrom: ", b"\r\nFrom: Evil <evil@example.net>\r\nFrom: "),
    ],
    ids=["List-Unsubscribe", "List-Unsubscribe-Post", "a second From"],
)
def test_tampering_fails_both_signatures(dual: DkimSigner, old: bytes, new: bytes) -> None:
    signed = dual.sign(digest_bytes())
    assert old in signed
    assert verifies(signed.replace(old, new, 1), dns_for(dual), 2) == [False, False]


def test_an_ed25519_key_alone_signs_ed25519_sha256(key_files: tuple[Path, Path]) -> None:
    signer = DkimSigner.from_settings(dkim_settings(key_files[1]).email)
    assert signer is not None
    (key,) = signer.keys
    assert key.describe() == "ed25519-sha256 key"
    record = key.record()
    assert record.startswith("v=DKIM1; k=ed25519; p=")
    raw = base64.b64decode(record.rpartition("p=")[2])
    assert raw == key.private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    signed = signer.sign(digest_bytes())
    assert signatures(signed)[0]["a"] == "ed25519-sha256"
    assert verifies(signed, dns_for(signer), 1) == [True]


def test_bad_ed25519_settings_are_config_errors(
    key_files: tuple[Path, Path], tmp_path: Path
) -> None:
    rsa_path, ed_path = key_files
    base = dkim_settings(rsa_path).email
    cases: list[tuple[dict[str, object], str]] = [
        ({"dkim_ed25519_selector": ED_SELECTOR}, "dkim_ed25519_key_path and dkim_ed25519_sel"),
        ({"dkim_ed25519_key_path": ed_path}, "go together: set both"),
        (
            {"dkim_ed25519_key_path": rsa_path, "dkim_ed25519_selector": ED_SELECTOR},
            r"dkim_ed25519_key_path: not an Ed25519 key \(found rsa-sha256, 2048-bit key\)",
        ),
        (
            {"dkim_ed25519_key_path": tmp_path / "no.pem", "dkim_ed25519_selector": "x"},
            "dkim_ed25519_key_path: cannot read",
        ),
        (
            {"dkim_key_path": None, "dkim_ed25519_key_path": ed_path, "dkim_ed25519_selector": "x"},
            "dkim_key_path, dkim_selector and dkim_domain go together",
        ),
    ]
    for update, message in cases:
        with pytest.raises(ConfigError, match=message):
            DkimSigner.from_settings(replace(base, **update))


def test_check_config_and_dkim_record_show_both_keys(
    key_files: tuple[Path, Path], tmp_path: Path
) -> None:
    from feedpipe.cli import cli

    (tmp_path / "posts").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
        f'[email]\ndkim_key_path = "{key_files[0]}"\ndkim_selector = "{SELECTOR}"\n'
        f'dkim_domain = "{DOMAIN}"\ndkim_ed25519_key_path = "{key_files[1]}"\n'
        f'dkim_ed25519_selector = "{ED_SELECTOR}"\n',
        encoding="utf-8",
    )
    checked = CliRunner().invoke(cli, ["--config", str(config), "check-config"])
    assert checked.exit_code == 0, checked.output
    assert "rsa-sha256, 2048-bit key, signs a test message" in checked.output
    assert f"ed25519-sha256 key, signs a test message; publish TXT at {ED_SELECTOR}." in (
        checked.output
    )
    printed = CliRunner().invoke(cli, ["--config", str(config), "dkim-record"])
    assert printed.exit_code == 0, printed.output
    records = {}
    for line in printed.output.strip().splitlines():
        name, _, rest = line.partition(" IN TXT ")
        records[name] = "".join(part.strip('"') for part in rest.split('" "')).encode()
    assert list(records) == [
        f"{SELECTOR}._domainkey.{DOMAIN}.",
        f"{ED_SELECTOR}._domainkey.{DOMAIN}.",
    ]
    assert records[f"{ED_SELECTOR}._domainkey.{DOMAIN}."].startswith(b"v=DKIM1; k=ed25519; p=")
    signer = DkimSigner.from_settings(dual_settings(key_files).email)
    assert signer is not None
    signed = signer.sign(digest_bytes())
    assert verifies(signed, lambda name, timeout=5: records.get(name.decode()), 2) == [True, True]


# Any text: non-ASCII, long lines, trailing spaces and tabs, blank lines at the end.
texts = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=300
) | st.lists(
    st.sampled_from(["x" * 1200, "tail  ", "tab\t", " lead", "", "ünï ✓", "  ", "a  b\t c"]),
    max_size=8,
).map("\n".join)


def raw_message(subject: str, name: str, body: str) -> bytes:
    """A message as a generic mail library writes it (policy SMTP picks the encodings)."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Blog <digest@blog.example.com>"
    message["To"] = f'"{name.replace(chr(34), "")}" <ann@example.org>'
    message["Subject"] = subject
    message["Message-ID"] = "<ob7.e1@blog.example.com>"
    message["List-Unsubscribe"] = "<https://news.example.com/u/tok>"
    message.set_content(body)
    return message.as_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=texts, name=texts, body=texts)
def test_any_subject_name_and_body_sign_and_verify(
    dual: DkimSigner, subject: str, name: str, body: str
) -> None:
    dns = dns_for(dual)
    clean = " ".join(subject.split())  # a header value has no line breaks
    name_line = " ".join(name.split())
    assert verifies(dual.sign(raw_message(clean, name_line, body)), dns, 2) == [True, True]
    raw = b"From: a@blog.example.com\r\nSubject: x\r\n\r\n" + body.replace("\n", "\r\n").encode()
    assert verifies(dual.sign(raw), dns, 2) == [True, True]  # 8-bit, whitespace as given
    try:
        personal = personalize_template(
            TEMPLATE, recipient(name=name_line or None), "<ob7.e1@blog.example.com>", NOW
        )
    except ValidationError:
        assume(False)
        return
    assert verifies(dual.sign(personal), dns, 2) == [True, True]


def _template() -> MimeTemplate:
    from feedpipe.emails.render import EmailRenderer
    from tests.test_email_support import edition, make_post
    from tests.test_email_support import settings as site_settings

    posts = [make_post(n, f"Post {n}", ("Rust",)) for n in range(1, 3)]
    return EmailRenderer(site_settings()).render_edition(edition(posts)).template


TEMPLATE = _template()

field_values = st.lists(
    st.sampled_from([b"a", b" ", b"\t", b"  b ", b"\r\n ", b"\r\n\t", b"x\ty", b"\xc3\xa9"]),
    min_size=1,
    max_size=10,
).map(b"".join)


@given(
    st.lists(st.tuples(st.sampled_from([b"Subject", b"To", b"X-A", b"from"]), field_values)),
    st.sampled_from([b"\r\n", b"\n"]),
)
def test_header_canonicalisation_matches_dkimpy(
    fields: list[tuple[bytes, bytes]], eol: bytes
) -> None:
    """The whole-block canonicalisation of a CRLF header block (and dkimpy's parser for a
    block with bare LFs) gives dkimpy's relaxed fields."""
    from dkim.canonicalization import CanonicalizationPolicy  # type: ignore[import-untyped]

    head = b"".join(n + b":" + v.replace(b"\r\n", eol) + eol for n, v in fields)
    wanted = frozenset({b"subject", b"to", b"from"})
    relaxed, body = relaxed_fields(head + eol + b"body" + eol, wanted)
    reference, rest = dkim.rfc822_parse(head + eol + b"body" + eol)
    assert body == rest  # (dkimpy writes the body with CRLF, as it goes on the wire)
    expected = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed").canonicalize_headers(
        reference
    )
    assert [(n, r + b"\r\n") for n, r in relaxed] == [
        (n.rstrip(b" \t").lower(), n + b":" + v)
        for n, v in expected
        if n.rstrip(b" \t").lower() in wanted
    ]


@pytest.mark.slow
def test_signatures_survive_a_real_postfix(key_files: tuple[Path, Path]) -> None:
    """SmtpTransport (dual signing) -> a Postfix instance of this test's own on a free port ->
    an aiosmtpd sink: what arrives (with Postfix's Received field on top) still verifies."""
    import asyncio
    import shutil
    import tempfile
    import time

    from feedpipe.mail import Envelope, Outcome, SmtpTransport
    from tests.postfix_relay import postfix_relay, unavailable
    from tests.smtp_servers import RecordingHandler, serve
    from tests.test_mail_smtp import free_port, make_settings

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    data = [digest_bytes().replace(b"ob7.e1@", f"ob{n}.e1@".encode()) for n in range(5)]
    envelopes = [
        Envelope(n, "digest@blog.example.com", "ann@example.org", d) for n, d in enumerate(data)
    ]
    handler = RecordingHandler()
    root = Path(tempfile.mkdtemp(prefix="fp-postfix-"))  # not under pytest's 0700 folders:
    root.chmod(0o755)  # Postfix's daemons run as the postfix user
    try:
        port = free_port()
        with serve(handler) as sink, postfix_relay(root / "pf", port, sink.port):
            transport = SmtpTransport.from_settings(dual_settings(key_files, make_settings(port)))

            async def send() -> list[Outcome]:
                try:
                    return [d.outcome for d in await transport.send_many(envelopes)]
                finally:
                    await transport.aclose()

            assert asyncio.run(send()) == [Outcome.SENT] * 5
            deadline = time.monotonic() + 60
            while len(handler.received) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert len(handler.received) == 5
    signer = DkimSigner.from_settings(dual_settings(key_files).email)
    assert signer is not None
    for received in handler.received:
        assert (
            received.data.startswith(b"Received: ") and b"by relay.feedpipe.test" in received.data
        )
        assert verifies(received.data, dns_for(signer), 2) == [True, True]
