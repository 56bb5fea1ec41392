"""DKIM: signatures made by the transports verify with dkimpy; a changed Subject breaks them."""

from __future__ import annotations

import asyncio
import base64
import email
import os
from email import policy
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from feedpipe.emails.mime import personalize_template
from feedpipe.emails.render import EmailRenderer
from feedpipe.errors import ConfigError
from feedpipe.mail import DkimSigner, Envelope, FileTransport, Outcome, SmtpTransport
from feedpipe.mail.files import file_name
from feedpipe.settings import Settings
from tests.smtp_servers import RecordingHandler, serve
from tests.test_email_support import edition, make_post, recipient, settings
from tests.test_mail_smtp import NOW, make_settings

SELECTOR, DOMAIN = "fp2026", "blog.example.com"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An RSA key file (PKCS#1 PEM) and the DNS TXT record publishing its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns_stub(record: bytes):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


def dkim_settings(key_path: Path, base: Settings | None = None, **email_extra: object) -> Settings:
    base = base or settings()
    update = {"dkim_key_path": key_path, "dkim_selector": SELECTOR, "dkim_domain": DOMAIN}
    return replace(base, **{"email": replace(base.email, **{**update, **email_extra})})


def digest_bytes() -> bytes:
    posts = [make_post(n, f"Post {n}", ("Rust",)) for n in range(1, 4)]
    rendered = EmailRenderer(settings()).render_edition(edition(posts))
    return personalize_template(rendered.template, recipient(), "<ob7.e1@blog.example.com>", NOW)


def test_signature_verifies_and_covers_the_listed_headers(keys: tuple[Path, bytes]) -> None:
    path, record = keys
    signer = DkimSigner.from_settings(dkim_settings(path).email)
    assert signer is not None
    signed = signer.sign(digest_bytes())
    assert dkim.verify(signed, dnsfunc=dns_stub(record))
    parsed = email.message_from_bytes(signed, policy=policy.default)
    tags = dict(
        part.strip().split("=", 1)
        for part in "".join(str(parsed["DKIM-Signature"]).split()).split(";")
        if part.strip()
    )
    assert tags["c"] == "relaxed/relaxed" and tags["d"] == DOMAIN and tags["s"] == SELECTOR
    assert tags["a"] == "rsa-sha256"
    assert tags["h"].split(":") == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
        "feedback-id",
        "from",
    ]  # fmt: skip  (From oversigned; no Reply-To in this digest)


def signature_tags(signed: bytes) -> dict[str, str]:
    parsed = email.message_from_bytes(signed, policy=policy.default)
    return dict(
        part.strip().split("=", 1)
        for part in "".join(str(parsed["DKIM-Signature"]).split()).split(";")
        if part.strip()
    )


def test_reply_to_is_signed_when_present(keys: tuple[Path, bytes]) -> None:
    path, record = keys
    signer = DkimSigner.from_settings(dkim_settings(path).email)
    assert signer is not None
    data = digest_bytes().replace(b"\r\nSubject: ", b"\r\nReply-To: ed@example.com\r\nSubject: ", 1)
    signed = signer.sign(data)
    assert "reply-to" in signature_tags(signed)["h"].split(":")
    assert dkim.verify(signed, dnsfunc=dns_stub(record))
    changed = signed.replace(b"Reply-To: ed@example.com", b"Reply-To: evil@example.com")
    assert not dkim.verify(changed, dnsfunc=dns_stub(record))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"List-Unsubscribe: <https://", b"List-Unsubscribe: <https://evil."),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"),
        (b"\r\nFrom: ", b"\r\nFrom: Evil <evil@example.net>\r\nFrom: "),  # oversigned From
        (b"\r\nList-Id: ", b"\r\nList-Id: <other.example.net>\r\nX-Was-List-Id: "),
        (b"Content-Type: multipart/alternative;", b"Content-Type: multipart/mixed;"),
    ],
    ids=["List-Unsubscribe", "List-Unsubscribe-Post", "a second From", "List-Id", "Content-Type"],
)
def test_tampering_with_a_signed_header_fails(
    keys: tuple[Path, bytes], old: bytes, new: bytes
) -> None:
    path, record = keys
    signer = DkimSigner.from_settings(dkim_settings(path).email)
    assert signer is not None
    signed = signer.sign(digest_bytes())
    assert dkim.verify(signed, dnsfunc=dns_stub(record))
    assert old in signed
    assert not dkim.verify(signed.replace(old, new, 1), dnsfunc=dns_stub(record))


def test_the_published_record_verifies_what_is_signed(keys: tuple[Path, bytes]) -> None:
    path, record = keys
    signer = DkimSigner.from_settings(dkim_settings(path).email)
    assert signer is not None
    (key,) = signer.keys
    assert key.record().encode() == record
    assert signer.record_name(key) == f"{SELECTOR}._domainkey.{DOMAIN}"


def test_a_key_that_is_neither_rsa_nor_ed25519_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())  # cryptography makes no RSA under 1024 bits
    short = tmp_path / "ec.pem"
    short.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match=r"not a usable DKIM key \(RSA or Ed25519; found ECPriv"):
        DkimSigner.from_settings(dkim_settings(short).email)


def test_changing_the_subject_breaks_the_signature(keys: tuple[Path, bytes]) -> None:
    path, record = keys
    signer = DkimSigner.from_settings(dkim_settings(path).email)
    assert signer is not None
    signed = signer.sign(digest_bytes())
    start = signed.index(b"\r\nSubject: ") + len(b"\r\nSubject: ")
    tampered = signed[:start] + b"X" + signed[start:]
    assert not dkim.verify(tampered, dnsfunc=dns_stub(record))


def test_file_and_smtp_transports_sign(keys: tuple[Path, bytes], tmp_path: Path) -> None:
    path, record = keys
    data = digest_bytes()
    env = Envelope(7, "digest@blog.example.com", "ann@example.org", data)
    handler = RecordingHandler()
    with serve(handler) as server:

        async def run() -> None:
            smtp = SmtpTransport.from_settings(dkim_settings(path, make_settings(server.port)))
            files = FileTransport.from_settings(dkim_settings(path, outbox_dir=tmp_path))
            try:
                for transport in (smtp, files):
                    (delivery,) = await transport.send_many([env])
                    assert delivery.outcome is Outcome.SENT
            finally:
                await smtp.aclose()
                await files.aclose()

        asyncio.run(run())
    for signed in (handler.received[0].data, (tmp_path / file_name(env)).read_bytes()):
        assert signed.startswith(b"DKIM-Signature: ") and signed.endswith(data)
        assert dkim.verify(signed, dnsfunc=dns_stub(record))


def test_incomplete_or_bad_dkim_settings_are_config_errors(tmp_path: Path) -> None:
    base = settings()
    partial = replace(base.email, **{"dkim_selector": SELECTOR})
    with pytest.raises(ConfigError, match="go together"):
        DkimSigner.from_settings(partial)
    with pytest.raises(ConfigError, match="cannot read"):
        DkimSigner.from_settings(dkim_settings(tmp_path / "missing.pem").email)
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not a usable DKIM key"):
        DkimSigner.from_settings(dkim_settings(junk).email)


def test_check_config_loads_the_key_and_dkim_record_prints_it(
    keys: tuple[Path, bytes], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from feedpipe.cli import cli

    path, record = keys
    config = tmp_path / "config.toml"
    (tmp_path / "posts").mkdir()  # check-config also checks that the source exists

    def write(key: Path) -> None:
        config.write_text(
            '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
            f'[email]\ndkim_key_path = "{key}"\ndkim_selector = "{SELECTOR}"\n'
            f'dkim_domain = "{DOMAIN}"\n',
            encoding="utf-8",
        )

    write(path)
    checked = CliRunner().invoke(cli, ["--config", str(config), "check-config"])
    assert checked.exit_code == 0, checked.output
    assert "rsa-sha256, 2048-bit key, signs a test message" in checked.output
    assert f"publish TXT at {SELECTOR}._domainkey.{DOMAIN}" in checked.output
    printed = CliRunner().invoke(cli, ["--config", str(config), "dkim-record"])
    assert printed.exit_code == 0, printed.output
    name, _, rest = printed.output.strip().partition(" IN TXT ")
    assert name == f"{SELECTOR}._domainkey.{DOMAIN}."
    assert "".join(part.strip('"') for part in rest.split('" "')).encode() == record
    unreadable = tmp_path / "unreadable.pem"
    unreadable.write_bytes(path.read_bytes())
    unreadable.chmod(0)
    write(unreadable if os.geteuid() != 0 else tmp_path / "missing.pem")
    bad = CliRunner().invoke(cli, ["--config", str(config), "check-config"])
    assert bad.exit_code == 2 and "dkim_key_path: cannot read" in bad.output


bodies = st.lists(
    st.sampled_from([b"a", b"b c", b" ", b"\t", b"  x\t y ", b"", b"=", b".", b"\r", b"\n"]),
    max_size=12,
).map(lambda lines: b"\r\n".join(lines))


@given(
    bodies,
    st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b" \r\n", b"\n", b"\r"]),
    st.sampled_from([1, 2, 3, 7, 512]),
)
def test_fast_relaxed_body_matches_dkimpy(body: bytes, tail: bytes, block: int) -> None:
    from dkim.canonicalization import CanonicalizationPolicy  # type: ignore[import-untyped]

    from feedpipe.mail.canon import relaxed_body

    reference = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    expected = reference.canonicalize_body(body + tail)
    assert relaxed_body(body + tail, block) == expected
    assert relaxed_body(body + tail, block) == expected  # again, from the cache
