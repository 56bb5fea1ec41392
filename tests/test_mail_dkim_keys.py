"""DKIM through SmtpTransport's key processes: many messages signed ahead of the connections all
verify; a key process that stops costs a retry, not a wrong signature; none starting falls back
to signing in the event loop."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

from feedpipe.emails.mime import personalize_template
from feedpipe.mail import DkimSigner, Envelope, Outcome, SmtpTransport, keypool
from feedpipe.mail.model import Delivery
from tests.smtp_servers import RecordingHandler, serve
from tests.test_email_support import recipient
from tests.test_mail_dkim_dual import TEMPLATE, dns_for, dual_settings, verifies
from tests.test_mail_dkim_dual import key_files as key_files  # the fixture
from tests.test_mail_smtp import NOW, make_settings

# A key process that answers the start-up check (its first request), then stops.
STOPS_AFTER_PROBE = """
import runpy, sys
worker = runpy.run_path({path!r})
stream, exactly = sys.stdin.buffer, worker["exactly"]
keys = worker["read_keys"](stream)
exactly(stream, 4)
frame = exactly(stream, 32 * len(keys))
signatures = [worker["sign"](k, frame[32 * n : 32 * (n + 1)]) for n, k in enumerate(keys)]
sys.stdout.buffer.write(b"".join(signatures))
"""


def envelopes(count: int) -> list[Envelope]:
    """`count` digests of one edition, each to its own reader (personalised headers and body)."""
    found = []
    for n in range(count):
        person = recipient(name=f"Reader {n}" * (n % 3), email=f"reader{n}@example.org")
        data = personalize_template(TEMPLATE, person, f"<ob{n}.e1@blog.example.com>", NOW)
        found.append(Envelope(n, "digest@blog.example.com", person.email, data))
    return found


def send(transport: SmtpTransport, batches: list[list[Envelope]]) -> list[list[Delivery]]:
    async def run() -> list[list[Delivery]]:
        try:
            return [await transport.send_many(batch) for batch in batches]
        finally:
            await transport.aclose()

    return asyncio.run(run())


def test_many_messages_signed_ahead_by_the_key_processes_all_verify(
    key_files: tuple[Path, Path],
) -> None:
    batch = envelopes(60)
    handler = RecordingHandler()
    with serve(handler) as server:
        settings = dual_settings(key_files, make_settings(server.port, concurrency=4))
        transport = SmtpTransport.from_settings(settings)

        async def run() -> list[Delivery]:
            try:
                deliveries = await transport.send_many(batch)
                assert transport.signing is not None and not transport.inline
                assert [p.alive for p in transport.signing.processes] == [True] * len(
                    transport.signing.processes
                )
                return deliveries
            finally:
                await transport.aclose()

        deliveries = asyncio.run(run())
    assert [d.outcome for d in deliveries] == [Outcome.SENT] * 60
    signer = DkimSigner.from_settings(settings.email)
    assert signer is not None
    by_recipient = {r.rcpt_tos[0]: r.data for r in handler.received}
    for envelope in batch:
        received = by_recipient[envelope.recipient]
        assert received.endswith(envelope.data)
        assert verifies(received, dns_for(signer), 2) == [True, True]


def test_a_stopped_key_process_costs_a_retry_and_is_started_again(
    key_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "stops.py"
    script.write_text(STOPS_AFTER_PROBE.format(path=str(keypool.WORKER)), encoding="utf-8")
    real = keypool.WORKER
    monkeypatch.setattr(keypool, "WORKER", script)
    first, second = envelopes(5), envelopes(5)
    handler = RecordingHandler()
    with serve(handler) as server:
        settings = dual_settings(key_files, make_settings(server.port, concurrency=2))
        transport = SmtpTransport.from_settings(settings)

        async def run() -> tuple[list[Delivery], list[Delivery]]:
            try:
                broken = await transport.send_many(first)
                monkeypatch.setattr(keypool, "WORKER", real)
                return broken, await transport.send_many(second)
            finally:
                await transport.aclose()

        broken, fixed = asyncio.run(run())
    assert [d.outcome for d in broken] == [Outcome.RETRY] * 5
    assert all(d.reply.startswith("DKIM signing failed: ") for d in broken)
    assert [d.outcome for d in fixed] == [Outcome.SENT] * 5
    signer = DkimSigner.from_settings(settings.email)
    assert signer is not None
    assert len(handler.received) == 5
    for received in handler.received:
        assert verifies(received.data, dns_for(signer), 2) == [True, True]


def test_with_no_key_process_the_event_loop_signs(
    key_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = tmp_path / "fails.py"
    script.write_text("import sys\nsys.exit('no cryptography here')\n", encoding="utf-8")
    monkeypatch.setattr(keypool, "WORKER", script)
    handler = RecordingHandler()
    with serve(handler) as server, caplog.at_level(logging.WARNING, "feedpipe.mail"):
        settings = dual_settings(key_files, make_settings(server.port, concurrency=2))
        transport = SmtpTransport.from_settings(settings)
        (deliveries,) = send(transport, [envelopes(3)])
    assert [d.outcome for d in deliveries] == [Outcome.SENT] * 3
    assert transport.inline
    assert "no key process" in caplog.text and "no cryptography here" in caplog.text
    signer = DkimSigner.from_settings(settings.email)
    assert signer is not None
    for received in handler.received:
        assert verifies(received.data, dns_for(signer), 2) == [True, True]


def test_the_key_process_runs_without_the_feedpipe_package() -> None:
    """It is started as a file with -P: only the standard library and cryptography load."""
    import subprocess

    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.startswith('feedpipe')))"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code, str(keypool.WORKER)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "[]"


def test_a_key_pool_used_from_a_new_event_loop_starts_new_processes(
    key_files: tuple[Path, Path],
) -> None:
    settings = dual_settings(key_files)
    signer = DkimSigner.from_settings(settings.email)
    assert signer is not None
    pool = keypool.KeyPool(signer.keys, size=1)
    data = envelopes(1)[0].data

    async def sign() -> bytes:
        await pool.start()
        prepared = signer.prepare(data)
        return prepared.fields(await pool.sign(prepared.digests)) + data

    first = asyncio.run(sign())  # its event loop closes with the process still running
    (old,) = pool.processes
    second = asyncio.run(sign())
    (new,) = pool.processes
    asyncio.run(pool.aclose())
    assert new is not old and not old.alive
    for signed in (first, second):
        assert verifies(signed, dns_for(signer), 2) == [True, True]
