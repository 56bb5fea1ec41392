"""A DKIM key process (run as a script): reads header hashes on stdin, writes signatures."""

# It imports only the standard library and `cryptography` (it is started as a file, without
# the feedpipe package), so that it starts in tens of milliseconds. The parent
# (mail/keypool.py) writes the keys once, as [count][length, PEM]..., then frames of
# [count][count x (one 32-byte SHA-256 header hash per key)]; for each frame it answers
# count x (each key's signature: RSA PKCS#1 v1.5 over the prehashed SHA-256, or Ed25519 over
# the hash, RFC 8463), lengths fixed by the keys, in order.

from __future__ import annotations

import signal
import struct
import sys
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

COUNT = struct.Struct("!I")
DIGEST = 32
PKCS1 = padding.PKCS1v15()
PREHASHED = utils.Prehashed(hashes.SHA256())


def exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def read_keys(stream: BinaryIO) -> list[rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey]:
    keys: list[rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey] = []
    for _ in range(COUNT.unpack(exactly(stream, COUNT.size))[0]):
        pem = exactly(stream, COUNT.unpack(exactly(stream, COUNT.size))[0])
        # the parent loaded and checked this key already (DkimKey), so it is not checked again
        key = serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise SystemExit(f"not an RSA or Ed25519 key: {type(key).__name__}")
        keys.append(key)
    return keys


def sign(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, digest: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, PKCS1, PREHASHED)
    return key.sign(digest)


def serve(stream: BinaryIO, out: BinaryIO) -> None:
    """Answer every frame, in order, until the parent closes the pipe."""
    try:
        keys = read_keys(stream)
        width = DIGEST * len(keys)
        while True:
            count = COUNT.unpack(exactly(stream, COUNT.size))[0]
            frame = exactly(stream, count * width)
            out.write(
                b"".join(
                    sign(key, frame[at + DIGEST * k : at + DIGEST * (k + 1)])
                    for at in range(0, len(frame), width)
                    for k, key in enumerate(keys)
                )
            )
            out.flush()
    except EOFError:
        return


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    serve(sys.stdin.buffer, sys.stdout.buffer)
