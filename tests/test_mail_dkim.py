"""DKIM: signatures made by the transports verify with dkimpy; a changed Subject breaks them."""

from __future__ import annotations

import asyncio
import base64
import email
from email import policy
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
    return base.model_copy(
        update={"email": base.email.model_copy(update={**update, **email_extra})}
    )


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
    assert tags["h"].split(":") == [
        "from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post",
    ]  # fmt: skip


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
    partial = base.email.model_copy(update={"dkim_selector": SELECTOR})
    with pytest.raises(ConfigError, match="go together"):
        DkimSigner.from_settings(partial)
    with pytest.raises(ConfigError, match="cannot read"):
        DkimSigner.from_settings(dkim_settings(tmp_path / "missing.pem").email)
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not a usable RSA key"):
        DkimSigner.from_settings(dkim_settings(junk).email)
