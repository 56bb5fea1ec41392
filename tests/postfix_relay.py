"""A private Postfix instance of a test's own: 127.0.0.1:<port> relaying everything to a sink."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
SERVICES = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""
MAIN = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file_prefixes = {root}
maillog_file = {root}/data/maillog
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.feedpipe.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink}
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtp_dns_support_level = disabled
"""


def unavailable() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    if not Path(POSTFIX).exists():
        return f"no {POSTFIX} (apt-get install postfix)"
    if os.geteuid() != 0:
        return "starting a Postfix instance needs root"
    try:
        import pwd

        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user"
    return None


@contextmanager
def postfix_relay(root: Path, port: int, sink: int) -> Iterator[Path]:
    """Postfix listening on 127.0.0.1:`port`, relaying to 127.0.0.1:`sink`; yields its log."""
    conf, data = root / "conf", root / "data"
    for folder in (conf, root / "queue", data):
        folder.mkdir(parents=True)
    root.chmod(0o755)
    shutil.chown(data, "postfix")
    (conf / "main.cf").write_text(MAIN.format(root=root, sink=sink))
    (conf / "master.cf").write_text(SERVICES.format(port=port))
    log = data / "maillog"
    command = [POSTFIX, "-c", str(conf)]
    started = subprocess.run([*command, "start"], capture_output=True, text=True, check=False)
    try:
        if started.returncode != 0:
            raise RuntimeError(f"postfix start failed: {started.stderr} {_tail(log)}")
        _wait_listening(port, log)
        yield log
    finally:
        subprocess.run([*command, "stop"], capture_output=True, check=False)
        subprocess.run([*command, "abort"], capture_output=True, check=False)


def _wait_listening(port: int, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"postfix did not listen on {port}: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
