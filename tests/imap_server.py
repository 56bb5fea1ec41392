"""A real Dovecot IMAP server for tests: its own instance on a free 127.0.0.1 port, a temporary
config, passwd-file authentication and a maildir in a temporary folder (never the system one)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-password"


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    user: str
    password: str
    root: Path


def missing() -> str | None:
    """Why no Dovecot can be started here (None: it can)."""
    if not Path(DOVECOT).exists():
        return "dovecot is not installed (make system-deps installs dovecot-imapd as root)"
    if not Path("/usr/lib/dovecot/imap").exists():
        return "dovecot-imapd is not installed (apt-get install dovecot-imapd)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path, port: int) -> str:
    if os.geteuid() == 0:  # dovecot drops root: its own users, and mail as nobody
        internal, login, mail = "dovecot", "dovenull", pwd.getpwnam("nobody")
    else:
        me = pwd.getpwuid(os.geteuid())
        internal = login = me.pw_name
        mail = me
    home = root / "home"
    home.mkdir()
    os.chown(home, mail.pw_uid, mail.pw_gid)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {min(mail.pw_uid, 500)}
mail_location = maildir:{home}/%u/Maildir
mail_uid = {mail.pw_uid}
mail_gid = {mail.pw_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={home}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@contextmanager
def dovecot() -> Iterator[ImapServer]:
    """Start Dovecot in the foreground (`-F`) and stop it at the end."""
    root = Path(tempfile.mkdtemp(prefix="feedpipe-dovecot-", dir="/tmp"))
    root.chmod(0o755)
    port = _free_port()
    config = root / "dovecot.conf"
    config.write_text(_config(root, port), encoding="utf-8")
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait(port, proc, root)
        yield ImapServer("127.0.0.1", port, USER, PASSWORD, root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _wait(port: int, proc: subprocess.Popen[bytes], root: Path) -> None:
    for _ in range(200):  # up to 20 s on a loaded machine
        if proc.poll() is not None:
            log = (
                (root / "dovecot.log").read_text(errors="replace")
                if (root / "dovecot.log").exists()
                else ""
            )
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"dovecot exited {proc.returncode}: {out}{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{port}")
