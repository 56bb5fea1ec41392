"""Real aiosmtpd servers on 127.0.0.1 (port 0) for tests: accept, throttle, reject, drop, stall,
or answer one stage with a scripted reply."""

from __future__ import annotations

import asyncio
import email
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Reply = str | None  # None: the handler's default (accept)


@dataclass(frozen=True, slots=True)
class Received:
    """One message the server accepted."""

    peer: object  # the client's (host, port)
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def parse(self) -> EmailMessage:
        message = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message

    @property
    def message_id(self) -> str:
        return str(self.parse()["Message-ID"])


@dataclass
class RecordingHandler:
    """Accepts everything and records it; subclasses refuse, throttle, drop or stall."""

    pipelining: bool = True
    received: list[Received] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)  # one per connection (its MAIL)
    rcpt_calls: int = 0
    data_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def connections(self) -> int:
        """How many distinct connections sent at least one MAIL command."""
        return len(set(self.peers))

    @property
    def message_ids(self) -> list[str]:
        return [r.message_id for r in self.received]

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return list(responses)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self.lock:
            if session.peer not in self.peers:
                self.peers.append(session.peer)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self.lock:
            self.rcpt_calls += 1
            count = self.rcpt_calls
        reply = await self.on_rcpt(server, address, count)
        if reply is None:
            envelope.rcpt_tos.append(address)
            return "250 OK"
        return close_after(server, reply)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.data_calls += 1
            count = self.data_calls
        rcpts = tuple(envelope.rcpt_tos)
        reply = await self.on_data(server, rcpts, count)
        if reply is not None:
            return close_after(server, reply)
        data = envelope.original_content or b""
        with self.lock:
            self.received.append(Received(session.peer, str(envelope.mail_from), rcpts, data))
        return "250 2.0.0 Ok: queued"

    async def on_rcpt(self, server: SMTP, address: str, count: int) -> Reply:
        return None

    async def on_data(self, server: SMTP, rcpts: tuple[str, ...], count: int) -> Reply:
        return None


def close_after(server: SMTP, reply: str) -> str:
    """A 421 reply means the server closes the connection right after sending it."""
    if reply.startswith("421") and server.transport is not None:
        asyncio.get_running_loop().call_soon(server.transport.close)
    return reply


@dataclass
class ThrottleHandler(RecordingHandler):
    """Answers the first `times` RCPTs (or DATAs) with `code`, then accepts."""

    code: int = 421
    stage: str = "rcpt"
    times: int = 1

    async def on_rcpt(self, server: SMTP, address: str, count: int) -> Reply:
        if self.stage == "rcpt" and count <= self.times:
            return f"{self.code} 4.7.0 Too many messages, slow down"
        return None

    async def on_data(self, server: SMTP, rcpts: tuple[str, ...], count: int) -> Reply:
        if self.stage == "data" and count <= self.times:
            return f"{self.code} 4.7.0 Rate limit exceeded, try again later"
        return None


@dataclass
class RejectHandler(RecordingHandler):
    """Rejects the listed recipients with their code, at RCPT (550) or after DATA (552/554)."""

    rcpt_codes: dict[str, int] = field(default_factory=dict)
    data_codes: dict[str, int] = field(default_factory=dict)

    async def on_rcpt(self, server: SMTP, address: str, count: int) -> Reply:
        code = self.rcpt_codes.get(address)
        return f"{code} 5.1.1 <{address}>: Recipient address rejected" if code else None

    async def on_data(self, server: SMTP, rcpts: tuple[str, ...], count: int) -> Reply:
        code = next((self.data_codes[r] for r in rcpts if r in self.data_codes), None)
        return f"{code} 5.7.1 Message rejected as spam" if code else None


@dataclass
class DropHandler(RecordingHandler):
    """Drops the connection during the DATA phase of the listed message numbers (1-based):
    the content has arrived, the final reply never comes."""

    drop_at: frozenset[int] = frozenset({1})

    async def on_data(self, server: SMTP, rcpts: tuple[str, ...], count: int) -> Reply:
        if count in self.drop_at and server.transport is not None:
            cast(asyncio.Transport, server.transport).abort()
            await asyncio.sleep(3600)  # cancelled by the lost connection
        return None


@dataclass
class StallHandler(RecordingHandler):
    """Waits `seconds` before answering the listed messages' DATA (past the client timeout)."""

    seconds: float = 5.0
    stall_at: frozenset[int] = frozenset({1})

    async def on_data(self, server: SMTP, rcpts: tuple[str, ...], count: int) -> Reply:
        if count in self.stall_at:
            await asyncio.sleep(self.seconds)
        return None


@dataclass
class ScriptedHandler(RecordingHandler):
    """Answers one stage ("ehlo", "mail", "rcpt" or "data", the reply after the content) with
    `reply` for every message, until `fixed` is set: then it accepts like RecordingHandler."""

    stage: str = "rcpt"
    reply: str = "550 5.7.1 Sender address rejected: Access denied"
    fixed: bool = False
    refused: int = 0  # how many times it said `reply`

    def _refuse(self, stage: str) -> str | None:
        if self.fixed or stage != self.stage:
            return None
        with self.lock:
            self.refused += 1
        return self.reply

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> list[str]:
        refused = self._refuse("ehlo")
        if refused is not None:
            return [refused]
        return await super().handle_EHLO(server, session, envelope, hostname, responses)

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        refused = self._refuse("ehlo")
        session.host_name = hostname
        return refused or f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refused = self._refuse("mail")
        if refused is not None:
            return close_after(server, refused)
        return await super().handle_MAIL(server, session, envelope, address, options)

    async def on_rcpt(self, server: SMTP, address: str, count: int) -> Reply:
        return self._refuse("rcpt")

    async def on_data(self, server: SMTP, rcpts: tuple[str, ...], count: int) -> Reply:
        return self._refuse("data")


class SmtpServer(Controller):
    """aiosmtpd's threaded controller on 127.0.0.1, on a free port chosen by the OS."""

    def __init__(self, handler: RecordingHandler, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)
        self.recorder = handler

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = cast(asyncio.Server, self.server).sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def password_authenticator(username: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator accepting exactly this LOGIN/PLAIN pair."""

    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            username.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def serve(handler: RecordingHandler, **kwargs: Any) -> Iterator[SmtpServer]:
    """Run a server for the duration of a `with` block."""
    server = SmtpServer(handler, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """A factory: `smtp_server(handler, **controller_kwargs)` starts one, stopped after the test."""
    servers: list[SmtpServer] = []

    def start(handler: RecordingHandler, **kwargs: Any) -> SmtpServer:
        server = SmtpServer(handler, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def tls_contexts(hostname: str = "127.0.0.1") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate: (server context, client context trusting it)."""
    import datetime
    import ipaddress
    import tempfile
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(hostname))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(pem)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cadata=pem.decode())
    return server, client
