"""One SMTP connection: aiosmtplib opens it (TLS, EHLO, AUTH); transactions are pipelined here."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import cast

import aiosmtplib

from feedpipe.errors import ConfigError, FeedpipeError
from feedpipe.mail.model import Outcome, Stage
from feedpipe.mail.replies import classify
from feedpipe.mail.wire import frame
from feedpipe.settings import SmtpSettings

MAX_REPLY_BYTES = 65_536
QUIT_TIMEOUT = 2.0
_PATH = re.compile(rb"[!-;=?-~]+")  # printable ASCII except < and >
_CONNECT_ERRORS = (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError, ValueError)


class SessionError(FeedpipeError):
    """The connection failed; `content_sent` tells whether the server may have the message."""

    def __init__(self, reason: str, content_sent: bool = False) -> None:
        super().__init__(reason)
        self.content_sent = content_sent


class ConnectError(SessionError):
    """The session could not be opened (refused, TLS, EHLO or AUTH failure, timeout);
    `code`/`reply` hold the server's refusal when there was one (EHLO, STARTTLS, AUTH)."""

    def __init__(self, reason: str, code: int | None = None, reply: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reply = reply

    @property
    def outcome(self) -> Outcome:
        """BLOCKED when the server refused us in words (a setup problem), else RETRY."""
        if self.code is None:
            return Outcome.RETRY
        refused = classify(self.code, self.reply, Stage.MAIL)
        return Outcome.RETRY if refused is Outcome.THROTTLED else refused


# awaited before the held message's final "." (`mail.model.Ready` for that envelope)
Gate = Callable[[], Awaitable[bool]]


class NotReady(FeedpipeError):
    """`ready` said no in the middle of DATA: the connection must be dropped unfinished."""


class AddressError(FeedpipeError):
    """An envelope address cannot be put on an SMTP command line."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One (possibly multi-line) SMTP reply."""

    code: int
    text: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one transaction; `reusable` is False when the connection must go."""

    outcome: Outcome
    code: int | None
    text: str
    reusable: bool = True


@dataclass(frozen=True, slots=True)
class Begun:
    """What `Session.begin` did: the held message it ended (`ended`, None if none was held),
    and this message's attempt if it ended at once (None: it is held now); `again` when the
    server is leaving before this message could start (send it on a new connection)."""

    ended: Attempt | None
    attempt: Attempt | None
    again: bool = False


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """How to reach and log in to the server."""

    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    timeout: float
    tls_context: ssl.SSLContext | None = None
    connect_timeout: float = 10.0  # TCP connect and the server's greeting

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_settings(
        cls, smtp: SmtpSettings, tls_context: ssl.SSLContext | None = None
    ) -> SessionConfig:
        password = smtp.password.get_secret_value() if smtp.password else None
        if smtp.username and not password:
            raise ConfigError("[email.smtp] username is set but $FEEDPIPE_SMTP_PASSWORD is empty")
        return cls(
            smtp.host,
            smtp.port,
            smtp.security,
            smtp.username,
            password,
            smtp.timeout_seconds,
            tls_context,
            smtp.connect_timeout_seconds,
        )


class ReplyReader(asyncio.Protocol):
    """Collects every reply the server sends, so several can be awaited after one write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.buffer = bytearray()
        self.replies: deque[Reply] = deque()
        self.lines: list[str] = []
        self.error: SessionError | None = None
        self.waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self._parse()
        except SessionError as exc:
            self.error = exc
            self.transport.abort()
        self._wake()

    def _parse(self) -> None:
        start = 0
        while (end := self.buffer.find(b"\n", start)) >= 0:
            line = bytes(self.buffer[start:end]).rstrip(b"\r")
            start = end + 1
            if len(line) < 3 or not line[:3].isdigit():
                raise SessionError(f"malformed reply from the server: {line[:80]!r}")
            self.lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                self.replies.append(Reply(int(line[:3]), "\n".join(self.lines)))
                self.lines = []
        del self.buffer[:start]
        if len(self.buffer) > MAX_REPLY_BYTES:
            raise SessionError("reply line too long")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None:
            detail = f": {exc}" if exc else ""
            self.error = SessionError(f"connection lost{detail}")
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def write(self, data: bytes | memoryview) -> None:
        if self.error is not None or self.transport.is_closing():
            raise self.error or SessionError("connection closed")
        self.transport.write(data)

    async def read(self, timeout: float) -> Reply:
        """The next reply; SessionError when the connection is lost or the server is silent."""
        while not self.replies:
            if self.error is not None:
                raise self.error
            loop = asyncio.get_running_loop()
            waiter = self.waiter = loop.create_future()
            # a timer on the future, not asyncio.timeout: a third of the cost, twice a message
            timer = loop.call_later(timeout, _silent, waiter, timeout)
            try:
                await waiter
            finally:
                timer.cancel()
                self.waiter = None
        return self.replies.popleft()


def _silent(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(SessionError(f"no reply within {timeout:g} s"))


def smtp_path(address: str) -> bytes:
    """`<address>` for MAIL FROM / RCPT TO; AddressError when it could break the command."""
    try:
        raw = address.encode("ascii")
    except UnicodeEncodeError:
        raise AddressError(f"{address!r} is not an ASCII address") from None
    if not _PATH.fullmatch(raw):
        raise AddressError(f"{address!r} cannot be used as an SMTP address")
    return b"<" + raw + b">"


def describe(exc: BaseException) -> str:
    """A one-line reason for a failed connection attempt."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def os_error(exc: OSError) -> str:
    """ "Connection refused [errno 111]" rather than asyncio's "Connect call failed (...)"."""
    return f"{os.strerror(exc.errno)} [errno {exc.errno}]" if exc.errno else str(exc)


CHECK_ADDRESS = "check [email.smtp] host and port"
SECURITY_HINT = '"starttls" for port 587, "tls" for 465'
CHECK_SECURITY = f"check [email.smtp] security ({SECURITY_HINT})"


def connect_failure(config: SessionConfig, exc: BaseException) -> str:
    """Why a session could not be opened, naming host:port, the reply or OS error, and what
    to check (one line)."""
    at, cause = config.address, exc.__cause__
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return (
            f"{at} refused AUTH as {config.username!r}: {exc.code} {exc.message}; "
            "check [email.smtp] username and $FEEDPIPE_SMTP_PASSWORD"
        )
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return f"{at} refused the session: {exc.code} {exc.message}; is this machine allowed?"
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return f"{at} refused EHLO: {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
        if isinstance(cause, aiosmtplib.SMTPTimeoutError):  # connected, then silence
            return (
                f"no SMTP greeting from {at} within {config.connect_timeout:g} s: is it an SMTP "
                f"server? {CHECK_ADDRESS} (and security: {SECURITY_HINT})"
            )
        return f"no answer from {at} within {config.connect_timeout:g} s; {CHECK_ADDRESS}"
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(
        cause, aiosmtplib.SMTPServerDisconnected
    ):
        return f"no SMTP greeting from {at}: it closed the connection; {CHECK_ADDRESS}"
    if isinstance(cause, socket.gaierror):
        return f"cannot resolve {config.host!r} ({cause.strerror}); check [email.smtp] host"
    if isinstance(cause, ConnectionRefusedError):
        return (
            f"{at} refused the connection ({os_error(cause)}): is the mail server running? "
            + CHECK_ADDRESS
        )
    if isinstance(cause, OSError):
        return f"cannot connect to {at} ({os_error(cause)}); {CHECK_ADDRESS}"
    if isinstance(exc, ssl.SSLError) or "TLS" in str(exc):
        return f"TLS with {at} failed: {describe(exc)}; {CHECK_SECURITY}"
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code < 0:
        return f"no SMTP greeting from {at}: {exc.message}; {CHECK_ADDRESS}"
    return f"cannot open an SMTP session with {at}: {describe(exc)}"


async def open_client(config: SessionConfig, local_hostname: str) -> aiosmtplib.SMTP:
    """Connect, TLS or STARTTLS, EHLO and AUTH with aiosmtplib; ConnectError on failure."""
    client = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        username=config.username,
        password=config.password,
        local_hostname=local_hostname,
        timeout=config.timeout,
        use_tls=config.security == "tls",
        start_tls=config.security == "starttls",
        tls_context=config.tls_context,
    )
    try:
        await client.connect(timeout=config.connect_timeout)
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
    except _CONNECT_ERRORS as exc:
        client.close()
        reason = connect_failure(config, exc)
        if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500:
            raise ConnectError(reason, exc.code, exc.message) from exc
        raise ConnectError(reason) from exc
    return client


class Session:
    """An open, authenticated connection that sends one message at a time, each held before
    its final `.` until the next begins (or `end`)."""

    def __init__(self, client: aiosmtplib.SMTP, timeout: float) -> None:
        transport = cast(asyncio.Transport, client.transport)
        self.client = client
        self.timeout = timeout
        self.pipelining = client.supports_extension("pipelining")
        self.size = client.supports_extension("size")
        self.reader = ReplyReader(transport)
        transport.set_protocol(self.reader)  # aiosmtplib's protocol awaits one reply per write
        self.transactions = 0
        self.held = False  # a message's content is out but for its final "."

    @classmethod
    async def open(cls, config: SessionConfig, local_hostname: str) -> Session:
        return cls(await open_client(config, local_hostname), config.timeout)

    @property
    def usable(self) -> bool:
        """Still connected, not in the middle of a held message's DATA, and the server has not
        said anything unasked (e.g. 421 on idle)."""
        reader = self.reader
        idle = not self.held and not reader.replies
        return idle and reader.error is None and not reader.transport.is_closing()

    async def begin(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        ready: Gate | None = None,
        crlf: bool = False,
    ) -> Begun:
        """Start a transaction: MAIL, RCPT, DATA (pipelined when offered), then the content but
        for its final `.`: the message is `held` until `end` or the next `begin`.

        A message held on this connection is ended first (`ready`, then its `.` in the same
        write as this envelope when the server pipelines, as RFC 2920 allows). SessionError
        when the connection is lost (`content_sent`: the held message's `.` went out), NotReady
        when `ready` said no."""
        self.transactions += 1
        payload = frame(data, crlf)
        commands = self._commands(sender, recipient, len(payload) - 3)
        ended: Attempt | None = None
        if isinstance(commands, Attempt):
            if self.held:
                ended = await self.end(ready)
            return Begun(ended, commands)
        if self.held:
            ended, failure = await self._end_held(commands, ready)
        else:
            failure = await self._envelope(commands)
        if ended is not None and not ended.reusable:
            return Begun(ended, None, again=True)  # the server is leaving: not started here
        if failure is not None:
            return Begun(ended, failure)
        self.reader.write(memoryview(payload)[:-3])  # all but ".\r\n": not acceptable yet
        self.held = True
        return Begun(ended, None)

    async def end(self, ready: Gate | None = None) -> Attempt:
        """`ready`, then the held message's final `.` and the server's reply to it."""
        await self._ready(ready)
        self.reader.write(b".\r\n")
        return await self._final()

    async def _end_held(
        self, commands: tuple[bytes, bytes], ready: Gate | None
    ) -> tuple[Attempt, Attempt | None]:
        """The held message's `.` (with the next envelope in the same write when the server
        pipelines) and its reply, then the envelope's failure (None: the server said 354). A
        connection lost after the reply keeps the reply and leaves the next message not
        started (not reusable: `again`)."""
        await self._ready(ready)
        tail = b"".join(commands) + b"DATA\r\n" if self.pipelining else b""
        self.reader.write(b".\r\n" + tail)
        ended = await self._final()
        if not ended.reusable:
            return ended, None
        try:
            return ended, await self._replies(commands, pipelined=self.pipelining)
        except SessionError:
            self.reader.transport.abort()
            return replace(ended, reusable=False), None

    async def _ready(self, ready: Gate | None) -> None:
        if ready is not None and not await ready():
            raise NotReady("not ready: recording stopped or the lease was lost")
        self.held = False

    async def _final(self) -> Attempt:
        try:
            final = await self.reader.read(self.timeout)
        except SessionError as exc:
            raise SessionError(f"{exc} (after the message was sent)", content_sent=True) from None
        return self._attempt(final, Stage.FINAL)

    def _commands(self, sender: str, recipient: str, size: int) -> tuple[bytes, bytes] | Attempt:
        """MAIL FROM and RCPT TO, or the attempt that ends here (an unusable address)."""
        try:
            rcpt = smtp_path(recipient)
        except AddressError as exc:
            return Attempt(Outcome.FAILED, None, f"recipient: {exc}")
        try:
            mail = smtp_path(sender)
        except AddressError as exc:
            return Attempt(Outcome.RETRY, None, f"sender: {exc}")
        option = b" SIZE=%d" % size if self.size else b""
        return b"MAIL FROM:" + mail + option + b"\r\n", b"RCPT TO:" + rcpt + b"\r\n"

    async def _envelope(self, commands: tuple[bytes, bytes]) -> Attempt | None:
        """Send MAIL, RCPT and DATA; None when the server said 354, else the failed attempt."""
        if self.pipelining:
            self.reader.write(b"".join(commands) + b"DATA\r\n")
        return await self._replies(commands, pipelined=self.pipelining)

    async def _replies(self, commands: tuple[bytes, bytes], pipelined: bool) -> Attempt | None:
        """The envelope's replies (written already when `pipelined`, else one by one)."""
        stages = (Stage.MAIL, Stage.RCPT, Stage.DATA)
        lines = (*commands, b"DATA\r\n")
        replies: list[Reply] = []
        if pipelined:
            replies = [await self.reader.read(self.timeout) for _ in lines]
        else:
            for line, stage in zip(lines, stages, strict=True):
                self.reader.write(line)
                replies.append(await self.reader.read(self.timeout))
                if not expected(replies[-1].code, stage):
                    break
        for reply, stage in zip(replies, stages, strict=False):
            if not expected(reply.code, stage):
                await self._recover(replies)
                return self._attempt(reply, stage)
        return None

    async def _recover(self, replies: list[Reply]) -> None:
        """After a refused envelope: end a stray DATA, then RSET (unless the server is leaving)."""
        if any(r.code == 421 for r in replies):
            return
        if len(replies) == 3 and replies[2].code == 354:
            self.reader.write(b".\r\n")  # nothing was accepted as a recipient; send nothing
            await self.reader.read(self.timeout)
        self.reader.write(b"RSET\r\n")
        await self.reader.read(self.timeout)

    def _attempt(self, reply: Reply, stage: Stage) -> Attempt:
        outcome = classify(reply.code, reply.text, stage)
        if stage is Stage.FINAL and 300 <= reply.code < 400:
            outcome = Outcome.RETRY
        return Attempt(outcome, reply.code, reply.text, reusable=reply.code != 421)

    async def quit(self) -> None:
        """Say QUIT politely (errors ignored), then close."""
        try:
            if self.usable:
                self.reader.write(b"QUIT\r\n")
                await self.reader.read(min(self.timeout, QUIT_TIMEOUT))
        except SessionError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection at once."""
        if not self.reader.transport.is_closing():
            self.reader.transport.close()
        self.client.close()


def expected(code: int, stage: Stage) -> bool:
    """The reply a stage needs to go on: 354 for DATA, 2xx otherwise."""
    return code == 354 if stage is Stage.DATA else 200 <= code < 300
