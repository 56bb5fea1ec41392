"""DKIM private-key steps in helper processes (mail/keyworker.py): the event loop writes each
message's 32-byte header hashes to one over a pipe and reads the signatures back, so the key
step runs on another core and never waits for, or holds, the sending process's GIL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from feedpipe.mail.signing import DkimKey, SigningError

WORKER = Path(__file__).with_name("keyworker.py")
COUNT = struct.Struct("!I")
FRAME = 8  # messages per request at most: the first signatures of a batch come back soon
START_TIMEOUT = 30.0  # seconds for a new process to sign its first hash
STOP_TIMEOUT = 2.0  # seconds a process has to exit once its stdin is closed
STDERR_KEPT = 2000  # bytes of a process's stderr kept for the error message
PROBE = bytes(32)  # the header hash a new process signs first (and the parent verifies)
Signatures = tuple[bytes, ...]  # one per key, in the signer's order


def key_bytes(keys: tuple[DkimKey, ...]) -> bytes:
    """What a key process reads first: the keys as PKCS#8 PEM, each with its length."""
    pems = [
        k.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for k in keys
    ]
    return COUNT.pack(len(pems)) + b"".join(COUNT.pack(len(p)) + p for p in pems)


def signature_size(key: DkimKey) -> int:
    """Bytes of one signature: the modulus length for RSA, 64 for Ed25519."""
    if isinstance(key.private, rsa.RSAPrivateKey):
        return (key.private.key_size + 7) // 8
    return 64


class KeyProcess(asyncio.SubprocessProtocol):
    """The parent's end of one key process: hashes go out in frames, the signatures come back
    in the same order and resolve the futures in turn."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        self.sizes = sizes
        self.width = sum(sizes)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.SubprocessTransport | None = None
        self.pending: list[bytes] = []  # hashes not written yet (until the loop's next turn)
        self.waiting: deque[asyncio.Future[Signatures]] = deque()
        self.buffer = bytearray()
        self.stderr = b""
        self.alive = True
        self.exited: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.SubprocessTransport, transport)

    def write(self, data: bytes) -> None:
        stdin = self.transport.get_pipe_transport(0) if self.transport else None
        if stdin is not None and not stdin.is_closing():
            cast(asyncio.WriteTransport, stdin).write(data)

    def submit(self, digests: tuple[bytes, ...]) -> asyncio.Future[Signatures]:
        """The signatures of these header hashes (one per key), when they come back."""
        future: asyncio.Future[Signatures] = self.loop.create_future()
        if not self.alive:
            future.set_exception(SigningError(self.reason()))
            return future
        if not self.pending:
            self.loop.call_soon(self._flush)
        self.pending.append(b"".join(digests))
        self.waiting.append(future)
        return future

    def _flush(self) -> None:
        """Write what was submitted during this turn of the loop, FRAME messages a request."""
        pending, self.pending = self.pending, []
        frames = [pending[i : i + FRAME] for i in range(0, len(pending), FRAME)]
        self.write(b"".join(COUNT.pack(len(f)) + b"".join(f) for f in frames))

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 2:
            self.stderr = (self.stderr + data)[-STDERR_KEPT:]
            return
        buffer, width = self.buffer, self.width
        buffer += data
        done = len(buffer) // width
        for n in range(done):
            future = self.waiting.popleft()
            if not future.done():  # else cancelled: its batch ended without it
                future.set_result(self._split(bytes(buffer[n * width : (n + 1) * width])))
        del buffer[: done * width]

    def _split(self, chunk: bytes) -> Signatures:
        if len(self.sizes) == 1:
            return (chunk,)
        parts, at = [], 0
        for size in self.sizes:
            parts.append(chunk[at : at + size])
            at += size
        return tuple(parts)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:  # no signature can come any more
            self.alive = False
            self.pending = []
            while self.waiting:
                future = self.waiting.popleft()
                if not future.done():
                    future.set_exception(SigningError(self.reason()))

    def process_exited(self) -> None:
        self.alive = False  # what it has written may still be read (pipe_connection_lost)
        if not self.exited.done():
            self.exited.set_result(None)

    def reason(self) -> str:
        code = self.transport.get_returncode() if self.transport else None
        said = self.stderr.decode("utf-8", "replace").strip().splitlines()
        last = f": {said[-1]}" if said else ""
        return f"DKIM signing failed: the key process has stopped (exit status {code}){last}"

    async def aclose(self) -> None:
        """Close its stdin (it ends there), wait a little for it to exit, then `close`."""
        stdin = self.transport.get_pipe_transport(0) if self.transport else None
        if stdin is not None:
            stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), STOP_TIMEOUT)
        self.close()

    def close(self) -> None:
        """Stop it at once (killed if still running)."""
        self.alive = False
        if self.transport is None:
            return
        try:
            self.transport.close()
        except RuntimeError:  # its event loop is closed; the process must still go
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(self.transport.get_pid(), signal.SIGKILL)


class KeyPool:
    """`size` key processes (one per core but one, at least one), started in the running event
    loop and restarted by `start` when one has stopped; each message goes to the least busy."""

    def __init__(self, keys: tuple[DkimKey, ...], size: int | None = None) -> None:
        self.keys = keys
        self.size = size or max(1, (os.cpu_count() or 2) - 1)
        self.processes: list[KeyProcess] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start the missing processes and check each signs its first hash right; OSError (or
        SigningError) if one cannot be started."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new event loop: the old one's pipes are useless
            self.close()
            self.loop = loop
        for stopped in [p for p in self.processes if not p.alive]:
            stopped.close()
        self.processes = [p for p in self.processes if p.alive]
        missing = self.size - len(self.processes)
        self.processes += await asyncio.gather(*(self._spawn() for _ in range(missing)))

    async def _spawn(self) -> KeyProcess:
        loop = asyncio.get_running_loop()
        sizes = tuple(signature_size(k) for k in self.keys)
        _, process = await loop.subprocess_exec(
            lambda: KeyProcess(sizes),
            sys.executable,
            "-P",  # not the folder of the script on sys.path: only the stdlib and cryptography
            str(WORKER),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        process.write(key_bytes(self.keys))
        try:
            async with asyncio.timeout(START_TIMEOUT):
                signatures = await process.submit((PROBE,) * len(self.keys))
            for key, signature in zip(self.keys, signatures, strict=True):
                key.verify_digest(PROBE, signature)
        except BaseException:
            process.close()
            raise
        return process

    def sign(self, digests: tuple[bytes, ...]) -> asyncio.Future[Signatures]:
        """A future of the signatures of one message's header hashes (one per key)."""
        alive = [p for p in self.processes if p.alive]
        if not alive:
            future: asyncio.Future[Signatures] = asyncio.get_running_loop().create_future()
            future.set_exception(SigningError("DKIM signing failed: no key process is running"))
            return future
        return min(alive, key=lambda p: len(p.waiting)).submit(digests)

    async def aclose(self) -> None:
        """Let every process end (each exits when its stdin closes)."""
        processes, self.processes = self.processes, []
        if self.loop is asyncio.get_running_loop():
            await asyncio.gather(*(p.aclose() for p in processes))
        for process in processes:
            process.close()

    def close(self) -> None:
        """Stop every process at once."""
        for process in self.processes:
            process.close()
        self.processes = []
