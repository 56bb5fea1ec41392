"""Ed25519 (RFC 8463) dual signing: both signatures verify with dkimpy (DNS stubbed), both
break when a signed header changes; dkim-record publishes both keys; bad keys are named."""

from __future__ import annotations

from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from feedpipe.cli import cli
from feedpipe.errors import ConfigError
from feedpipe.mail import DkimSigner
from tests.test_mail_dkim import DOMAIN, SELECTOR, digest_bytes, dkim_settings, keys

ED_SELECTOR = "fp2026ed"
__all__ = ["keys"]  # the RSA key fixture


@pytest.fixture(scope="module")
def ed_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("ed") / "ed25519.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _signer(rsa_path: Path, ed_path: Path) -> DkimSigner:
    email = dkim_settings(
        rsa_path, dkim_ed25519_key_path=ed_path, dkim_ed25519_selector=ED_SELECTOR
    ).email
    signer = DkimSigner.from_settings(email)
    assert signer is not None and signer.ed25519 is not None
    return signer


def _dns(signer: DkimSigner):  # type: ignore[no-untyped-def]
    records = {f"{name}.".encode(): value.encode() for name, value in signer.records()}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return lookup


def _algorithms(signed: bytes) -> list[bytes]:
    d = dkim.DKIM(signed)
    return [
        dict(dkim.util.parse_tag_value(v))[b"a"]
        for k, v in d.headers
        if k.lower() == b"dkim-signature"
    ]


def test_both_signatures_verify(keys: tuple[Path, bytes], ed_key: Path) -> None:
    signer = _signer(keys[0], ed_key)
    signed = signer.sign(digest_bytes())
    assert _algorithms(signed) == [b"ed25519-sha256", b"rsa-sha256"]
    checker = dkim.DKIM(signed)
    assert checker.verify(idx=0, dnsfunc=_dns(signer))
    assert checker.verify(idx=1, dnsfunc=_dns(signer))
    names = [name for name, _ in signer.records()]
    assert names == [f"{SELECTOR}._domainkey.{DOMAIN}", f"{ED_SELECTOR}._domainkey.{DOMAIN}"]
    assert signer.records()[1][1].startswith("v=DKIM1; k=ed25519; p=")


def test_a_changed_list_unsubscribe_fails_both(keys: tuple[Path, bytes], ed_key: Path) -> None:
    signer = _signer(keys[0], ed_key)
    signed = signer.sign(digest_bytes())
    changed = signed.replace(b"List-Unsubscribe: <https://", b"List-Unsubscribe: <https://evil.")
    checker = dkim.DKIM(changed)
    assert not checker.verify(idx=0, dnsfunc=_dns(signer))
    assert not checker.verify(idx=1, dnsfunc=_dns(signer))


def test_bad_or_half_ed25519_settings_are_named(keys: tuple[Path, bytes], ed_key: Path) -> None:
    rsa_path = keys[0]
    with pytest.raises(ConfigError, match=r"dkim_ed25519_key_path: not a usable Ed25519 key"):
        DkimSigner.from_settings(
            dkim_settings(rsa_path, dkim_ed25519_key_path=rsa_path, dkim_ed25519_selector="x").email
        )
    with pytest.raises(ConfigError, match="go together: set both"):
        DkimSigner.from_settings(dkim_settings(rsa_path, dkim_ed25519_key_path=ed_key).email)


def test_dkim_record_prints_both(tmp_path: Path, keys: tuple[Path, bytes], ed_key: Path) -> None:
    (tmp_path / "posts").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        '[site]\ntitle = "B"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{tmp_path / "posts"}"\n'
        f'[email]\ndkim_key_path = "{keys[0]}"\ndkim_selector = "{SELECTOR}"\n'
        f'dkim_domain = "{DOMAIN}"\ndkim_ed25519_key_path = "{ed_key}"\n'
        f'dkim_ed25519_selector = "{ED_SELECTOR}"\n',
        encoding="utf-8",
    )
    out = CliRunner().invoke(cli, ["--config", str(config), "dkim-record"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith(f'{SELECTOR}._domainkey.{DOMAIN}. IN TXT "v=DKIM1; k=rsa; p=')
    assert lines[1].startswith(f'{ED_SELECTOR}._domainkey.{DOMAIN}. IN TXT "v=DKIM1; k=ed25519')
