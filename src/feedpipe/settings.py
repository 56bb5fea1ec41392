"""Typed, validated settings from config.toml plus environment (secrets only from environment)."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr, replace

from feedpipe.envnames import CONFIG_ENV as CONFIG_ENV
from feedpipe.envnames import IMAP_PASSWORD_ENV as IMAP_PASSWORD_ENV
from feedpipe.envnames import SECRET_KEY_ENV as SECRET_KEY_ENV
from feedpipe.envnames import SMTP_PASSWORD_ENV as SMTP_PASSWORD_ENV
from feedpipe.envnames import STORE_URL_ENV as STORE_URL_ENV
from feedpipe.errors import ConfigError

FeedFormat = Literal["rss", "atom", "json"]
HUB_PATH = "/websub"  # where `feedpipe serve` answers as a WebSub hub ([websub] serve)

DEFAULT_LEASE_SECONDS = 60.0  # the outbox lease when neither lease_seconds key is set

# How to fix each key, shown with its validation error.
HINTS: dict[str, str] = {
    "site.url": 'set it to the blog\'s public address, e.g. url = "https://blog.example.com"',
    "site.title": 'give the site a name, e.g. title = "My Blog"',
    "source.kind": 'use one of "markdown", "json" or "feed"',
    "source.path": "point it at the folder of posts (markdown) or the export/feed file",
    "store.url": 'a SQLAlchemy URL, e.g. "sqlite:///feedpipe.db" or "postgresql+psycopg://host/db"',
    "feeds.max_items": "a whole number from 1 to 1000",
    "feeds.archive_size": "a whole number from 1 to 1000",
    "feeds.formats": 'a list drawn from "rss", "atom", "json"',
    "feeds.output_dir": "a folder feedpipe may write feeds into",
    "digest.timezone": 'an IANA zone name, e.g. "Europe/Berlin" or "UTC"',
    "digest.send_time": 'a local time as HH:MM, e.g. "08:00"',
    "feeds.websub_hubs": 'a list of hub URLs, e.g. ["https://pubsubhubbub.appspot.com/"]',
    "web.base_url": 'the public address of `feedpipe serve`, e.g. "https://news.example.com"',
    "email.smtp.helo_name": 'this host\'s fully-qualified name, e.g. "mail.blog.example.com"',
}
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_BOUNCE_ADDRESS = re.compile(r"[A-Za-z0-9._=-]{1,40}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_ADDRESS_LITERAL = re.compile(r"\[(IPv6:[0-9A-Fa-f:.]+|\d{1,3}(\.\d{1,3}){3})\]")


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A settings section: typed, immutable, unknown keys refused (msgspec validates it)."""

    def _set(self, name: str, check: Callable[[Any], Any]) -> None:
        """Replace field `name` by `check(value)`; its ValueError names the field."""
        try:
            force_setattr(self, name, check(getattr(self, name)))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None


class Secret:
    """A value from the environment that never shows in a repr, a log or a dump."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an absolute http(s) URL")
    return value.rstrip("/")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".ico", ".avif")


def _check_image(value: str) -> str:
    """An image: an absolute http(s) URL, or a path (relative to the config file) of an image."""
    if value.startswith(("http://", "https://")):
        return _check_http_url(value)
    if not value.lower().endswith(IMAGE_SUFFIXES):
        raise ValueError(
            f"{value!r} is neither an http(s) URL nor an image file ({', '.join(IMAGE_SUFFIXES)})"
        )
    return value


def _check_post_path(value: str) -> str:
    if "{slug}" not in value:
        raise ValueError("must contain {slug}")
    return value


def _check_formats(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("needs at least one format")
    return tuple(dict.fromkeys(value))


def _check_bounce_address(value: str) -> str:
    if not _BOUNCE_ADDRESS.fullmatch(value):
        raise ValueError(
            "must be a plain address without '+' in its local part "
            '(e.g. "bounces@blog.example.com")'
        )
    return value


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`check` for a key that may be unset (None passes)."""
    return lambda value: None if value is None else check(value)


IMAGE_PREFIX = "feed-"  # a file icon/logo is copied to output_dir as feed-icon.png …


class SiteSettings(_Section, frozen=True):
    title: Annotated[str, Meta(min_length=1)]
    url: str
    description: str = ""
    language: str = "en"
    author: str | None = None
    author_email: str | None = None
    post_path: str = "/posts/{slug}/"
    icon: str | None = None  # small square image for the feeds: an http(s) URL or a file path
    logo: str | None = None  # larger image for feeds and digests: an http(s) URL or a file path

    def __post_init__(self) -> None:
        self._set("url", _check_http_url)
        self._set("post_path", _check_post_path)
        self._set("icon", _optional(_check_image))
        self._set("logo", _optional(_check_image))

    def post_url(self, slug: str) -> str:
        return self.url + "/" + self.post_path.format(slug=slug).lstrip("/")


class SourceSettings(_Section, frozen=True):
    kind: Literal["markdown", "json", "feed"] = "markdown"
    path: Path = Path("posts")
    # How front-matter/JSON summaries are written: plain text (literal), or inline Markdown
    # (its HTML goes to HTML contexts, its text to text contexts); docs/content.md.
    summary_format: Literal["text", "markdown"] = "text"


class StoreSettings(_Section, frozen=True):
    url: str = "sqlite:///feedpipe.db"
    # How long a write waits for another process's lock (retries included), then the command
    # says "the store is locked by another process" and exits 4 (store/engine.py: same default).
    busy_timeout_seconds: Annotated[float, Meta(gt=0, le=3600)] = 30.0


class FeedsSettings(_Section, frozen=True):
    output_dir: Path = Path("public")
    base_url: str | None = None  # where output_dir is served; default: site url
    max_items: Annotated[int, Meta(ge=1, le=1000)] = 50
    formats: tuple[FeedFormat, ...] = ("rss", "atom", "json")
    tags: bool = True
    xslt: bool = True
    websub_hub: str | None = None  # one hub (kept); websub_hubs lists any number
    websub_hubs: tuple[str, ...] = ()
    archive: bool = True  # RFC 5005 archives of every post beyond max_items (docs/feeds.md)
    archive_size: Annotated[int, Meta(ge=1, le=1000)] = 50  # posts per archive document
    pages: bool = True  # index.html for people in each feed's folder (never over a foreign one)
    tombstone_days: Annotated[int, Meta(ge=0, le=3650)] = 30  # RFC 6721 tombstones of retractions

    def __post_init__(self) -> None:
        self._set("formats", _check_formats)
        self._set("base_url", _optional(_check_http_url))
        self._set("websub_hub", _optional(_check_http_url))
        self._set("websub_hubs", lambda hubs: tuple(dict.fromkeys(map(_check_http_url, hubs))))


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder ("Europe")
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
    return value


def _check_hhmm(value: str) -> str:
    hour, _, minute = value.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ValueError(f"{value!r} is not a time of day as HH:MM")
    return f"{int(hour):02d}:{int(minute):02d}"


class DigestSettings(_Section, frozen=True):
    """Defaults for new subscribers and how digests look."""

    timezone: str = "UTC"
    send_time: str = "08:00"
    frequency: Literal["instant", "daily", "weekly", "monthly"] = "daily"
    weekday: Weekday = "mon"
    templates_dir: Path | None = None  # overrides templates/email/ file by file
    max_bytes: Annotated[int, Meta(ge=20_000)] = 102_000
    max_posts: Annotated[int, Meta(ge=1)] = 30  # per digest; the rest is "and N more"
    instant_delay: Annotated[int, Meta(ge=0, le=1440)] = 5  # minutes after publishing
    late_after: Annotated[float, Meta(gt=0)] = 6.0  # hours: a later send merges into the next
    backdated_days: Annotated[float, Meta(ge=0)] = 7.0  # first seen later than this: old post

    def __post_init__(self) -> None:
        self._set("timezone", _check_timezone)
        self._set("send_time", _check_hhmm)


def helo_problem(name: str) -> str | None:
    """Why `name` is not a HELO name a server will accept (None: it is fine)."""
    if _ADDRESS_LITERAL.fullmatch(name):
        return None
    labels = name.rstrip(".").split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels) or len(name) > 253:
        return f"{name!r} is not a host name"
    lowered = name.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith((".localhost", ".localdomain", ".local")):
        return f"{name!r} is a local name that mail servers refuse"
    if len(labels) < 2:
        return f"{name!r} is not fully qualified (it needs a domain, e.g. mail.example.com)"
    return None


def _check_helo(value: str) -> str:
    problem = helo_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class SmtpSettings(_Section, frozen=True):
    """The mail server (password only from $FEEDPIPE_SMTP_PASSWORD)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 25
    security: Literal["starttls", "tls", "none"] = "none"
    username: str | None = None
    password: Secret | None = None  # only from the environment
    timeout_seconds: Annotated[float, Meta(gt=0)] = 30.0
    connect_timeout_seconds: Annotated[float, Meta(gt=0)] = 10.0  # TCP connect + the greeting
    concurrency: Annotated[int, Meta(ge=1, le=256)] = 8
    max_per_second: Annotated[float, Meta(gt=0)] | None = None
    max_per_hour: Annotated[int, Meta(gt=0)] | None = None
    helo_name: str | None = None  # default: the domain of [email] from_address

    def __post_init__(self) -> None:
        self._set("helo_name", _optional(_check_helo))


class EmailSettings(_Section, frozen=True):
    """Sender identity of every message, and how messages leave."""

    transport: Literal["outbox", "smtp"] = "outbox"  # outbox = .eml files in outbox_dir
    outbox_dir: Path = Path("outbox")
    smtp: SmtpSettings = SmtpSettings()
    batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 200
    max_attempts: Annotated[int, Meta(ge=1)] = 8
    bounce_limit: Annotated[int, Meta(ge=1)] = 3
    # How long claimed messages stay leased to a dispatcher (`send` and `run` alike); renewed
    # while it works on them, so this is how long a crashed one's messages wait. Default 60.
    lease_seconds: Annotated[float, Meta(gt=0)] | None = None
    # The circuit breaker: sending pauses after this many sender/policy replies in a row,
    # or from this many distinct recipients within an hour.
    pause_after: Annotated[int, Meta(ge=1)] = 5
    pause_after_recipients: Annotated[int, Meta(ge=1)] = 20
    dkim_key_path: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_ed25519_key_path: Path | None = None  # a second signature, RFC 8463 (dual signing)
    dkim_ed25519_selector: str | None = None

    from_address: str = "digest@blog.example.com"
    from_name: str | None = None
    reply_to: str | None = None
    list_id: str | None = None  # default: derived from the site host
    unsubscribe_mailto: str | None = None  # e.g. unsubscribe@blog.example.com
    feedback_id: str | None = None
    # VERP: every envelope sender becomes bounces+<signed token>@domain (see docs/delivery.md)
    bounce_address: str | None = None
    # Soft bounces (asynchronous, 4.x.x) that suppress within the window; a delivery resets.
    soft_bounce_limit: Annotated[int, Meta(ge=1)] = 3
    soft_bounce_days: Annotated[float, Meta(gt=0)] = 30.0
    # Gmail and Yahoo: sending pauses above this complaint rate (0.003 = 0.3 %) over 7 days,
    # once at least rate_min_sent messages went out in that time.
    complaint_rate_limit: Annotated[float, Meta(gt=0, le=1)] = 0.003
    rate_min_sent: Annotated[int, Meta(ge=1)] = 200

    def __post_init__(self) -> None:
        self._set("bounce_address", _optional(_check_bounce_address))
        problem = helo_problem(self.helo_name)
        if self.transport == "smtp" and self.smtp.helo_name is None and problem:
            raise ValueError(
                f"smtp.helo_name: the default, from_address's domain, will not do: {problem}"
            )

    @property
    def helo_name(self) -> str:
        """The name feedpipe gives in EHLO/HELO: [email.smtp] helo_name, else from_address's
        domain."""
        return self.smtp.helo_name or self.from_address.rpartition("@")[2]


class InboundSettings(_Section, frozen=True):
    """Where bounces, complaints and mailto: unsubscribes arrive (`feedpipe run` polls it)."""

    imap_host: str | None = None  # unset: no polling (`feedpipe inbound` still reads stdin)
    imap_port: Annotated[int, Meta(ge=1, le=65535)] | None = None  # default: 993 (tls) or 143
    imap_user: str | None = None  # password only from $FEEDPIPE_IMAP_PASSWORD
    folder: str = "INBOX"
    processed_folder: str = "feedpipe-processed"
    tls: Literal["tls", "starttls", "none"] = "tls"
    poll_seconds: Annotated[float, Meta(gt=0)] = 60.0
    password: Secret | None = None  # only from $FEEDPIPE_IMAP_PASSWORD

    def __post_init__(self) -> None:
        if self.imap_host is not None and not self.imap_user:
            raise ValueError("imap_user: is required with imap_host")

    @property
    def port(self) -> int:
        return self.imap_port or (993 if self.tls == "tls" else 143)


class WebSettings(_Section, frozen=True):
    """Where the subscriber web surface is served (links in emails point here)."""

    base_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    # Subscribe abuse limits (docs/web.md "Abuse"): confirmation emails queued per hour for the
    # whole site and per recipient domain, counted in the store; hashcash bits (0: off).
    confirmations_per_hour: Annotated[int, Meta(ge=1)] = 100
    confirmations_per_domain_per_hour: Annotated[int, Meta(ge=1)] = 10
    subscribe_proof_of_work: Annotated[int, Meta(ge=0, le=24)] = 0
    # 429 to a client fetching the same unchanged feed without validators more than N times
    # an hour (None: never refused)
    refuse_unconditional_after: Annotated[int, Meta(ge=1)] | None = None
    access_log: bool = False  # `serve`: one line per request on stderr (no client address)

    def __post_init__(self) -> None:
        self._set("base_url", _check_http_url)


class WorkerSettings(_Section, frozen=True):
    """The long-running worker (`feedpipe run`)."""

    poll_seconds: Annotated[float, Meta(gt=0)] = 60.0  # sync + build at least this often
    watch: bool = True  # also sync + build on file-system events (Markdown sources)
    debounce_seconds: Annotated[float, Meta(ge=0)] = 0.5
    plan_seconds: Annotated[float, Meta(gt=0)] = 60.0
    dispatch_seconds: Annotated[float, Meta(gt=0)] = 2.0
    lease_seconds: Annotated[float, Meta(gt=0)] | None = None  # deprecated: [email] lease_seconds
    shutdown_timeout: Annotated[float, Meta(gt=0)] = 30.0
    metrics_port: Annotated[int, Meta(ge=0, le=65535)] | None = None
    log_format: Literal["kv", "json"] = "kv"
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class WebsubSettings(_Section, frozen=True):
    """WebSub: publishing to hubs after builds, and `feedpipe serve` as a hub (serve = true)."""

    serve: bool = False  # `feedpipe serve` is a hub at <[web] base_url>/websub
    allow_private: bool = False  # accept callbacks on private/loopback/link-local addresses
    lease_seconds: Annotated[int, Meta(ge=60)] = 864_000  # granted when none is asked (10 days)
    max_lease_seconds: Annotated[int, Meta(ge=60)] = 2_592_000  # at most (30 days)
    timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = 5.0  # each request to a hub/callback
    attempts: Annotated[int, Meta(ge=1, le=10)] = 4  # tries per request (backoff 1 s, 2 s, 4 s …)
    backoff_seconds: Annotated[float, Meta(ge=0, le=60)] = 1.0  # the first retry's wait

    def __post_init__(self) -> None:
        if self.lease_seconds > self.max_lease_seconds:
            raise ValueError(
                f"lease_seconds: {self.lease_seconds} must not exceed "
                f"max_lease_seconds ({self.max_lease_seconds})"
            )


class Settings(_Section, frozen=True):
    site: SiteSettings
    source: SourceSettings = SourceSettings()
    store: StoreSettings = StoreSettings()
    feeds: FeedsSettings = FeedsSettings()
    digest: DigestSettings = DigestSettings()
    email: EmailSettings = EmailSettings()
    web: WebSettings = WebSettings()
    worker: WorkerSettings = WorkerSettings()
    websub: WebsubSettings = WebsubSettings()
    inbound: InboundSettings = InboundSettings()
    base_dir: Path = Path()
    secret_key: Secret | None = None  # only from $FEEDPIPE_SECRET_KEY

    @property
    def feeds_url(self) -> str:
        return self.feeds.base_url or self.site.url

    def image_url(self, role: str) -> str | None:
        """The public URL of `[site] icon` or `logo`: the configured URL, or for a file path
        the URL of its copy in the feeds' output (`feeds/icons.py` copies it)."""
        value: str | None = getattr(self.site, role)
        if not value or value.startswith(("http://", "https://")):
            return value
        return f"{self.feeds_url.rstrip('/')}/{IMAGE_PREFIX}{role}{Path(value).suffix.lower()}"

    @property
    def own_hub(self) -> str | None:
        """This site's hub (`feedpipe serve` with [websub] serve = true), or None."""
        return self.web.base_url + HUB_PATH if self.websub.serve else None

    @property
    def websub_hubs(self) -> tuple[str, ...]:
        """Every hub the feeds advertise and builds notify: websub_hub, websub_hubs, our own."""
        hubs = [self.feeds.websub_hub, *self.feeds.websub_hubs, self.own_hub]
        return tuple(dict.fromkeys(h for h in hubs if h))

    @property
    def lease_seconds(self) -> float:
        """The outbox lease of every dispatcher: [email] lease_seconds, else the deprecated
        [worker] lease_seconds, else DEFAULT_LEASE_SECONDS."""
        return self.email.lease_seconds or self.worker.lease_seconds or DEFAULT_LEASE_SECONDS


# msgspec's one-line errors: "<message> - at `$.feeds.max_items`" (no "at" for the top level);
# a section's own check says "<key>: <message>" (_Section._set).
_AT = re.compile(r"(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.S)
_FIELD_MESSAGES = (
    (re.compile(r"Object missing required field `(\w+)`"), "is required"),
    (re.compile(r"Object contains unknown field `(\w+)`"), "unknown key (check its spelling)"),
    (re.compile(r"(\w+(?:\.\w+)*): (.*)", re.S), ""),
)


def _describe(error: msgspec.ValidationError) -> str:
    """`[section] key: what is wrong — how to fix it`, from a msgspec validation error."""
    found = _AT.fullmatch(str(error))
    message, path = (found["msg"], found["path"] or "") if found else (str(error), "")
    loc = [part for part in re.split(r"\.|\[\d+\]", path) if part]
    for pattern, fixed in _FIELD_MESSAGES:
        named = pattern.fullmatch(message)
        if named:
            loc.append(named[1])
            message = fixed or named[2]
            break
    dotted = ".".join(loc)
    key = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else (loc[0] if loc else "(top level)")
    hint = HINTS.get(dotted)
    return f"{key}: {message}" + (f" — {hint}" if hint else "")


def _decode(kind: type, value: Any) -> Any:
    """The types TOML has no word for: paths."""
    if kind is Path and isinstance(value, str | os.PathLike):
        return Path(value)
    raise NotImplementedError(kind)


def _encode(value: Any) -> Any:
    """Paths and secrets as JSON can carry them (a secret only as "set")."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Secret):
        return "**********"
    raise NotImplementedError(type(value))


def settings_as_data(settings: Settings) -> dict[str, Any]:
    """The settings as plain JSON-able data (secrets masked)."""
    data: dict[str, Any] = msgspec.to_builtins(settings, enc_hook=_encode)
    return data


def parse_settings(data: Mapping[str, Any]) -> Settings:
    """Validate already-read data into Settings; ConfigError names the first bad key."""
    try:
        return msgspec.convert(data, Settings, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


# Keys that would hold a secret, and the environment variable that holds it instead.
SECRET_KEYS = {
    "secret_key": SECRET_KEY_ENV,
    "password": SMTP_PASSWORD_ENV,
    "smtp_password": SMTP_PASSWORD_ENV,
    "admin_token": "FEEDPIPE_ADMIN_TOKEN",
    "imap_password": IMAP_PASSWORD_ENV,
}


def _refuse_secrets(data: Mapping[str, Any], origin: str, section: str = "") -> None:
    """Secrets come only from the environment: a secret key in the file is an error."""
    for key, value in data.items():
        if isinstance(value, Mapping):
            _refuse_secrets(value, origin, f"{section}.{key}" if section else key)
        elif key in SECRET_KEYS:
            where = f"[{section}] {key}" if section else key
            raise ConfigError(
                f"{origin}: {where}: secrets never go in the config file — "
                f"remove it and set ${SECRET_KEYS[key]} instead"
            )


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()


def _resolve_sqlite(base: Path, url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(_resolve(base, Path(url[len(prefix) :])))
    return url


def _email_with_env(email: EmailSettings, base: Path, env: Mapping[str, str]) -> EmailSettings:
    password = env.get(SMTP_PASSWORD_ENV)
    smtp = replace(email.smtp, password=Secret(password) if password else None)
    key = email.dkim_key_path and _resolve(base, email.dkim_key_path)
    ed25519 = email.dkim_ed25519_key_path and _resolve(base, email.dkim_ed25519_key_path)
    return replace(
        email,
        smtp=smtp,
        outbox_dir=_resolve(base, email.outbox_dir),
        dkim_key_path=key,
        dkim_ed25519_key_path=ed25519,
    )


def _inbound_with_env(inbound: InboundSettings, env: Mapping[str, str]) -> InboundSettings:
    password = env.get(IMAP_PASSWORD_ENV)
    return replace(inbound, password=Secret(password) if password else None)


def settings_from_mapping(
    data: Mapping[str, Any], base_dir: Path, origin: str, env: Mapping[str, str]
) -> Settings:
    """Validate raw TOML data; paths resolve against `base_dir`; env may override the store URL."""
    _refuse_secrets(data, origin)
    secret = env.get(SECRET_KEY_ENV)
    try:
        settings = parse_settings(data)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    store_url = env.get(STORE_URL_ENV) or settings.store.url
    templates = settings.digest.templates_dir
    return replace(
        settings,
        base_dir=base_dir,
        secret_key=Secret(secret) if secret else None,
        source=replace(settings.source, path=_resolve(base_dir, settings.source.path)),
        store=replace(settings.store, url=_resolve_sqlite(base_dir, store_url)),
        email=_email_with_env(settings.email, base_dir, env),
        inbound=_inbound_with_env(settings.inbound, env),
        digest=replace(settings.digest, templates_dir=templates and _resolve(base_dir, templates)),
        feeds=replace(settings.feeds, output_dir=_resolve(base_dir, settings.feeds.output_dir)),
    )


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from `path`, else $FEEDPIPE_CONFIG, else ./config.toml."""
    env = os.environ if env is None else env
    path = path or Path(env.get(CONFIG_ENV) or "config.toml")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found — pass --config PATH or set {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return settings_from_mapping(data, path.resolve().parent, str(path), env)


# --- what `feedpipe check-config` checks without leaving this machine ---------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One check-config result: `level` is "ok", "warn" (works, but look) or "error"."""

    level: Literal["ok", "warn", "error"]
    key: str  # the setting it is about, e.g. "[source] path"
    text: str


def check_paths(settings: Settings) -> list[Finding]:
    """The source is there and readable; output, outbox and templates folders are usable."""
    found = [_check_source(settings.source)]
    found.append(_check_writable("[feeds] output_dir", settings.feeds.output_dir))
    if settings.email.transport == "outbox":
        found.append(_check_writable("[email] outbox_dir", settings.email.outbox_dir))
    templates = settings.digest.templates_dir
    if templates is not None:
        ok = templates.is_dir() and os.access(templates, os.R_OK | os.X_OK)
        text = f"{templates} is readable" if ok else f"{templates} is not a readable folder"
        found.append(Finding("ok" if ok else "error", "[digest] templates_dir", text))
    return found


def _check_source(source: SourceSettings) -> Finding:
    key, path = "[source] path", source.path
    if not path.exists():
        return Finding("error", key, f"{path} does not exist; {HINTS['source.path']}")
    if source.kind == "markdown":
        if not path.is_dir():
            return Finding("error", key, f'{path} is not a folder (kind = "markdown")')
        if not os.access(path, os.R_OK | os.X_OK):
            return Finding("error", key, f"{path} is not readable by this user")
        count = sum(1 for p in path.rglob("*") if p.suffix in (".md", ".markdown"))
        return Finding("ok", key, f"{path}: {count} Markdown file{'' if count == 1 else 's'}")
    if not path.is_file() or not os.access(path, os.R_OK):
        return Finding("error", key, f'{path} is not a readable file (kind = "{source.kind}")')
    return Finding("ok", key, f"{path} is readable")


def _check_writable(key: str, path: Path) -> Finding:
    if path.exists():
        if not path.is_dir():
            return Finding("error", key, f"{path} exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            return Finding("error", key, f"{path} is not writable by this user")
        return Finding("ok", key, f"{path} is writable")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        return Finding("error", key, f"{path} does not exist and {parent} is not writable")
    return Finding("ok", key, f"{path} will be created (in {parent}, writable)")


def check_deprecated(settings: Settings) -> list[Finding]:
    """Keys that still work but have moved."""
    if settings.worker.lease_seconds is None:
        return []
    used = "ignored: [email] lease_seconds is set" if settings.email.lease_seconds else "used"
    text = (
        f"deprecated ({used}): the lease now governs `send` and `run` alike — "
        f"move it to [email] lease_seconds = {settings.worker.lease_seconds:g}"
    )
    return [Finding("warn", "[worker] lease_seconds", text)]


def check_base_url(settings: Settings) -> Finding:
    """[web] base_url goes into every unsubscribe and preferences link: public when mail is real."""
    url = settings.web.base_url
    parts = urlsplit(url)
    host = parts.hostname or ""
    private = _private_host(host)
    problems = [f"{host} is {private}"] if private else []
    if parts.scheme == "http":
        problems.append("it is http:, not https:")
    if not problems:
        return Finding("ok", "[web] base_url", f"{url} is public")
    why = " and ".join(problems)
    if settings.email.transport == "outbox":
        text = f'{url}: {why}; fine while transport = "outbox" writes local .eml files'
        return Finding("ok", "[web] base_url", text)
    return Finding(
        "warn",
        "[web] base_url",
        f"{url}: {why}, yet every email's unsubscribe and preferences links point there; "
        + HINTS["web.base_url"],
    )


def _private_host(host: str) -> str | None:
    """Why readers elsewhere cannot reach `host` ("loopback", "a private address"), or None."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith((".localhost", ".local", ".internal", ".lan")):
        return "a local name"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    if address.is_loopback:
        return "loopback"
    if address.is_private or address.is_link_local or address.is_unspecified:
        return "a private address"
    return None
