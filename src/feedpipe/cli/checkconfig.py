"""`feedpipe check-config`: check what a run will need, then print the effective settings."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from feedpipe.cli.common import CliState, Exit, fail, pass_state
from feedpipe.cli.textgrid import plural, table

if TYPE_CHECKING:
    from feedpipe.settings import Finding, Settings

SECRETS = (
    "FEEDPIPE_SECRET_KEY",
    "FEEDPIPE_SMTP_PASSWORD",
    "FEEDPIPE_ADMIN_TOKEN",
    "FEEDPIPE_IMAP_PASSWORD",
)


@click.command("check-config")
@click.option(
    "--connect",
    is_flag=True,
    help="Also connect to the SMTP server: greeting, EHLO, STARTTLS and AUTH as configured.",
)
@pass_state
def check_config(state: CliState, connect: bool) -> None:
    """Validate the configuration and check what a run will need: the source is readable, the
    output and outbox folders writable, the store reachable and migrated, the SMTP host
    resolvable (--connect: a real session), the DKIM key usable, [web] base_url public. Then
    print the effective configuration, secrets masked. Exit status 2 on any error."""
    from feedpipe.settings import check_base_url, check_deprecated, check_paths

    settings = state.settings()
    findings = [*check_paths(settings), _check_store(settings), *_check_mail(settings, connect)]
    findings.append(check_base_url(settings))
    findings += check_deprecated(settings)
    findings.append(_check_inbound(settings, connect))
    click.echo(f"config  {state.config or os.environ.get('FEEDPIPE_CONFIG') or 'config.toml'}")
    click.echo(table(["LEVEL", "KEY", "CHECK"], [[f.level, f.key, f.text] for f in findings]))
    click.echo("\neffective configuration (secrets masked):")
    click.echo(effective(settings))
    errors = [f for f in findings if f.level == "error"]
    warnings = [f for f in findings if f.level == "warn"]
    if errors:
        fail(Exit.CONFIG, f"check-config: {plural(len(errors), 'problem')} (marked error above)")
    if warnings:
        click.echo(f"\n{plural(len(warnings), 'warning')}; everything a run needs is in place")


def _check_store(settings: Settings) -> Finding:
    from feedpipe.errors import StoreError
    from feedpipe.settings import Finding
    from feedpipe.store import HEAD_REVISION, safe_url, store_revision

    url, key = safe_url(settings.store.url), "[store] url"
    try:
        revision = store_revision(settings.store.url)
    except StoreError as exc:
        return Finding("error", key, str(exc))
    if revision is None:
        return Finding("ok", key, f"{url}: no schema yet; the first command creates it")
    if revision == HEAD_REVISION:
        return Finding("ok", key, f"{url}: reachable, at migration {revision} (current)")
    return Finding(
        "warn", key, f"{url}: at migration {revision}; the next command migrates it to "
        f"{HEAD_REVISION} (back it up first)",
    )  # fmt: skip


def _check_mail(settings: Settings, connect: bool) -> list[Finding]:
    from feedpipe.errors import ConfigError
    from feedpipe.mail.signing import DkimSigner
    from feedpipe.settings import Finding

    found = []
    try:
        signer = DkimSigner.from_settings(settings.email)
        text = (
            "not configured"
            if signer is None
            else "; ".join(
                f"{key.describe()}, signs a test message; publish TXT at {signer.record_name(key)}"
                for key in signer.keys
            )
            + " (`feedpipe dkim-record` prints it)"
        )
        found.append(Finding("ok", "[email] dkim_key_path", text))
    except ConfigError as exc:
        found.append(Finding("error", "[email] dkim_key_path", str(exc)))
    if settings.email.transport != "smtp":
        where = settings.email.outbox_dir
        found.append(Finding("ok", "[email] transport", f'"outbox": .eml files in {where}'))
        return found
    found.append(_check_smtp(settings, connect))
    return found


def _check_inbound(settings: Settings, connect: bool) -> Finding:
    """The IMAP mailbox `feedpipe run` polls: the password is set; --connect logs in."""
    from feedpipe.settings import Finding

    inbound, key = settings.inbound, "[inbound] imap_host"
    if inbound.imap_host is None:
        return Finding("ok", key, "not set: no polling (`feedpipe inbound` reads stdin)")
    where = f"{inbound.imap_host}:{inbound.port} as {inbound.imap_user}"
    if inbound.password is None:
        return Finding("error", key, f"{where}: $FEEDPIPE_IMAP_PASSWORD is not set")
    if not connect:
        return Finding("ok", key, f"{where}, folder {inbound.folder!r} (--connect logs in)")
    from feedpipe.mail.imap import InboundError
    from feedpipe.mail.imap import connect as imap_connect

    try:
        imap_connect(inbound).logout()
    except InboundError as exc:
        return Finding("error", key, str(exc))
    return Finding("ok", key, f"{where}: logged in, folder {inbound.folder!r} selected")


def _check_smtp(settings: Settings, connect: bool) -> Finding:
    import asyncio
    import socket

    from feedpipe.errors import ConfigError
    from feedpipe.mail.session import ConnectError, SessionConfig, open_client
    from feedpipe.settings import Finding

    smtp, key = settings.email.smtp, "[email.smtp]"
    try:
        addresses = {str(a[4][0]) for a in socket.getaddrinfo(smtp.host, smtp.port)}
    except OSError as exc:
        return Finding("error", key, f"cannot resolve host {smtp.host!r}: {exc}")
    resolved = f"{smtp.host} resolves to {', '.join(sorted(addresses))}"
    if not connect:
        return Finding("ok", key, f"{resolved} (--connect opens a session)")
    try:
        config = SessionConfig.from_settings(smtp)
    except ConfigError as exc:
        return Finding("error", key, str(exc))

    async def session() -> str:
        client = await open_client(config, socket.getfqdn())
        try:
            steps = ["greeting", "EHLO"]
            steps += ["STARTTLS"] if smtp.security == "starttls" else []
            steps += ["TLS"] if smtp.security == "tls" else []
            steps += [f"AUTH as {smtp.username}"] if smtp.username else []
            return ", ".join(steps) + " ok"
        finally:
            await client.quit()

    try:
        done = asyncio.run(session())
    except ConnectError as exc:
        return Finding("error", key, str(exc))
    return Finding("ok", key, f"{config.address}: {done}")


def effective(settings: Settings) -> str:
    """The settings as TOML-like sections, every secret masked."""
    from feedpipe.settings import settings_as_data
    from feedpipe.store import safe_url

    data = settings_as_data(settings)
    del data["base_dir"]
    data["store"]["url"] = safe_url(settings.store.url)
    email = data["email"]
    smtp = email.pop("smtp")
    smtp["password"] = "*** (from $FEEDPIPE_SMTP_PASSWORD)" if smtp["password"] else None
    inbound = data["inbound"]
    inbound["password"] = "*** (from $FEEDPIPE_IMAP_PASSWORD)" if inbound["password"] else None
    lines: list[str] = []
    sections = [(name, data[name]) for name in data if isinstance(data[name], dict)]
    sections.insert([n for n, _ in sections].index("email") + 1, ("email.smtp", smtp))
    for name, values in sections:
        lines += ["", f"[{name}]"]
        lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in values.items()]
    lines += ["", "[environment]"]
    lines += [f"{name}: {'set' if os.environ.get(name) else 'not set'}" for name in SECRETS]
    return "\n".join(lines).lstrip("\n")
