"""Subscriber input: validate and normalise fields (CLI, CSV row, web form); CSV export."""

from __future__ import annotations

import csv
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import IO, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedpipe.errors import ValidationError
from feedpipe.model import (
    LAST_DAY,
    WEEKDAYS,
    Frequency,
    NewSubscriber,
    Preferences,
    Schedule,
    Subscriber,
    SubscriberStatus,
    Term,
)
from feedpipe.model.subscribers import wait_text
from feedpipe.model.terms import clean_name, term_key
from feedpipe.parallel import process_pool, worker_count
from feedpipe.settings import DigestSettings

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
E = TypeVar("E", Frequency, SubscriberStatus)
T = TypeVar("T")
MAX_NAME_CHARS = 200  # the form's maxlength and the API's limit (name and given name)
CSV_COLUMNS = (
    "email", "name", "categories", "frequency", "weekday", "time", "timezone", "status",
    "month_day", "min_posts", "max_wait", "given_name",
)  # fmt: skip
MAX_MIN_POSTS = 100
MAX_WAIT = timedelta(days=366)


class FieldError(ValidationError):
    """One input field is invalid; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownCategoriesError(ValidationError):
    """Categories that the blog does not have; `known` lists the ones it has."""

    def __init__(self, unknown: Sequence[str], known: Sequence[str]) -> None:
        listed = ", ".join(known) if known else "none yet"
        super().__init__(f"unknown categories: {', '.join(unknown)} (known: {listed})")
        self.unknown = tuple(unknown)
        self.known = tuple(known)


def field_of(exc: ValidationError) -> str:
    """The form field an error is about ("" when it is about none in particular)."""
    if isinstance(exc, UnknownCategoriesError):
        return "categories"
    return exc.field if isinstance(exc, FieldError) else ""


class FieldErrors(ValidationError):
    """Several input fields are invalid at once; `errors` lists each, in form order."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        super().__init__("; ".join(f"{field_of(e)}: {e}" for e in errors))
        self.errors = tuple(errors)


def raise_all(errors: Sequence[ValidationError]) -> None:
    """Nothing for no error, the error itself for one, FieldErrors for several."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise FieldErrors(errors)


@dataclass(frozen=True, slots=True)
class PreferencesInput:
    """A preferences form: empty fields keep the current value; no categories means all
    (None: keep them); `given_name` None keeps it, "" clears it."""

    categories: tuple[str, ...] | None = ()
    frequency: str | None = None
    weekday: str | None = None
    time: str | None = None
    timezone: str | None = None
    month_day: str | None = None  # 1..28 or "last" (monthly digests)
    min_posts: str | None = None  # hold the digest until this many posts are new ...
    max_wait: str | None = None  # ... at most this long: "7d", "36h", or days
    given_name: str | None = None  # what the greeting calls them


@dataclass(frozen=True, slots=True)
class SubscribeInput:
    """What a subscribe form or JSON body carries (text as typed; validated by the service)."""

    email: str
    name: str | None = None
    categories: tuple[str, ...] = ()
    frequency: str | None = None
    weekday: str | None = None
    time: str | None = None
    timezone: str | None = None
    month_day: str | None = None
    min_posts: str | None = None
    max_wait: str | None = None
    given_name: str | None = None

    def preferences(self) -> PreferencesInput:
        return PreferencesInput(
            self.categories,
            self.frequency,
            self.weekday,
            self.time,
            self.timezone,
            self.month_day,
            self.min_posts,
            self.max_wait,
            self.given_name,
        )


@dataclass(frozen=True, slots=True)
class CategoryIndex:
    """The store's categories by term key, for resolving what subscribers type."""

    by_key: Mapping[str, Term]

    @classmethod
    def of(cls, terms: Iterable[Term]) -> CategoryIndex:
        return cls({t.key: t for t in terms})

    def resolve(self, text: str) -> tuple[str, ...]:
        """Comma-separated names to term keys in the given order; unknown names are an error."""
        names = [clean_name(part) for part in text.split(",")]
        keys = [term_key(name) for name in names if name]
        unknown = [name for name in names if name and term_key(name) not in self.by_key]
        if unknown:
            raise ValidationError(f"unknown categories: {', '.join(unknown)} ({self.known()})")
        return tuple(dict.fromkeys(keys))

    def known(self) -> str:
        names = self.sorted_names()
        if not names:
            return "no categories are known yet — run `feedpipe sync` first"
        return "known: " + ", ".join(names)

    def names(self, keys: Sequence[str]) -> str:
        return ",".join(self.by_key[k].name if k in self.by_key else k for k in keys)

    def sorted_names(self) -> list[str]:
        return sorted((t.name for t in self.by_key.values()), key=str.casefold)

    def check(self, names: Sequence[str]) -> tuple[str, ...]:
        """Cleaned names, each known; UnknownCategoriesError lists the known ones."""
        cleaned = tuple(dict.fromkeys(n for n in (clean_name(x) for x in names) if n))
        unknown = [n for n in cleaned if term_key(n) not in self.by_key]
        if unknown:
            raise UnknownCategoriesError(unknown, self.sorted_names())
        return cleaned

    def keys(self, names: Sequence[str]) -> tuple[str, ...]:
        """Term keys of `names` (each checked) in the given order; none = all categories."""
        return tuple(dict.fromkeys(term_key(n) for n in self.check(names)))


def normalise_email(text: str) -> str:
    """The address as email-validator normalises it (domain lower-cased); ValidationError if bad."""
    from email_validator import EmailNotValidError, validate_email  # ~40 ms: only when checking

    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(f"{text.strip()!r} is not a valid email address: {exc}") from None


def parse_weekday(text: str) -> int:
    """`mon`/`Monday`/`0`..`6` to 0 (Monday) .. 6."""
    value = text.strip().casefold()
    if value.isdigit() and int(value) < 7:
        return int(value)
    for index, full in enumerate(DAY_NAMES):
        if len(value) >= 3 and full.startswith(value):
            return index
    raise ValidationError(f"{text!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")


def parse_time(text: str) -> time:
    hour, sep, minute = text.strip().partition(":")
    if sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60:
        return time(int(hour), int(minute))
    raise ValidationError(f"{text!r} is not a time of day as HH:MM")


def parse_month_day(text: str) -> int:
    """`1`..`28` or `last` (LAST_DAY): the day of the month monthly digests go out."""
    value = text.strip().casefold()
    if value == "last":
        return LAST_DAY
    if value.isdigit() and 1 <= int(value) <= 28:
        return int(value)
    raise ValidationError(f"{text!r} is not a day of the month (1 to 28, or last)")


def parse_min_posts(text: str) -> int:
    value = text.strip()
    if value.isdigit() and 1 <= int(value) <= MAX_MIN_POSTS:
        return int(value)
    raise ValidationError(f"{text!r} is not a number of posts from 1 to {MAX_MIN_POSTS}")


def parse_wait(text: str) -> timedelta:
    """`7d`, `36h` or a bare number of days, from 1 hour to a year."""
    value = text.strip().casefold()
    unit = value[-1:] if value[-1:] in ("d", "h") else "d"
    number = value[:-1] if value[-1:] in ("d", "h") else value
    if number.isdigit():
        wait = timedelta(**{"days" if unit == "d" else "hours": int(number)})
        if timedelta(hours=1) <= wait <= MAX_WAIT:
            return wait
    raise ValidationError(f"{text!r} is not a wait such as 7d or 36h (1 hour to 366 days)")


def parse_timezone(text: str) -> str:
    name = text.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise ValidationError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
    return name


def parse_given_name(text: str) -> str:
    """What the greeting calls a subscriber: the name on one line (`clean_name`), at most
    MAX_NAME_CHARS characters; "" when nothing printable is left."""
    name = clean_name(text)
    if len(name) > MAX_NAME_CHARS:
        raise ValidationError(f"the given name is longer than {MAX_NAME_CHARS} characters")
    return name


def given_name_field(text: str | None) -> str | None:
    """The cleaned given name, None for an empty one; a FieldError on `given_name`."""
    return field_value("given_name", parse_given_name, text) or None


def parse_choice(kind: type[E], text: str) -> E:
    try:
        return kind(text.strip().lower())
    except ValueError:
        choices = ", ".join(k.value for k in kind)
        raise ValidationError(f"{text!r} is not one of {choices}") from None


def field_value(name: str, parse: Callable[[str], T], text: str | None) -> T | None:
    """`parse(text)`, None for an empty field; a bad value is a FieldError naming `name`."""
    if not (text and text.strip()):
        return None
    try:
        return parse(text)
    except ValidationError as exc:
        raise FieldError(name, str(exc)) from None


def email_field(text: str) -> str:
    """The normalised address, or a FieldError on `email`."""
    try:
        return normalise_email(text)
    except ValidationError as exc:
        raise FieldError("email", str(exc)) from None


def new_schedule(
    prefs: PreferencesInput, current: Schedule, errors: list[ValidationError] | None = None
) -> Schedule:
    """`current` with the fields `prefs` fills in, validated: each error names its field;
    with `errors`, every bad field is added there (and keeps its current value) instead."""
    found: list[ValidationError] = [] if errors is None else errors

    def value(name: str, parse: Callable[[str], T], text: str | None) -> T | None:
        try:
            return field_value(name, parse, text)
        except FieldError as exc:
            found.append(exc)
            return None

    # in the preferences page's order, so its error summary lists them as the form does
    frequency = value("frequency", lambda v: parse_choice(Frequency, v), prefs.frequency)
    weekday = value("weekday", parse_weekday, prefs.weekday)
    month_day = value("month_day", parse_month_day, prefs.month_day)
    min_posts = value("min_posts", parse_min_posts, prefs.min_posts)
    max_wait = value("max_wait", parse_wait, prefs.max_wait)
    send_time = value("time", parse_time, prefs.time)
    timezone = value("timezone", parse_timezone, prefs.timezone)
    schedule = Schedule(
        frequency=frequency or current.frequency,
        weekday=current.weekday if weekday is None else weekday,
        send_time=send_time or current.send_time,
        timezone=timezone or current.timezone,
        month_day=current.month_day if month_day is None else month_day,
        min_posts=min_posts or current.min_posts,
        max_wait=max_wait or current.max_wait,
    )
    if errors is None:
        raise_all(found)
    return schedule


def new_preferences(
    prefs: PreferencesInput, current: Preferences, categories: CategoryIndex
) -> Preferences:
    """`current` with what `prefs` fills in, validated the one way every entry point shares
    (preferences page, resubscribe, CLI update, admin API): every bad field at once
    (FieldErrors when more than one), in form order, and nothing changed unless all are good."""
    errors: list[ValidationError] = []
    given = current.given_name
    if prefs.given_name is not None:  # None keeps it; "" clears it
        try:
            given = given_name_field(prefs.given_name)
        except FieldError as exc:
            errors.append(exc)
    keys = current.categories
    if prefs.categories is not None:
        try:
            keys = categories.keys(prefs.categories)
        except UnknownCategoriesError as exc:
            errors.append(exc)
    schedule = new_schedule(prefs, current.schedule, errors)
    raise_all(errors)
    return Preferences(schedule, keys, given)


def default_schedule(defaults: DigestSettings) -> Schedule:
    """The schedule of a subscriber who chose nothing: the [digest] defaults."""
    return Schedule(
        frequency=parse_choice(Frequency, defaults.frequency),
        weekday=parse_weekday(defaults.weekday),
        send_time=parse_time(defaults.send_time),
        timezone=parse_timezone(defaults.timezone),
    )


def new_subscriber(
    fields: Mapping[str, str | None],
    defaults: DigestSettings,
    categories: CategoryIndex,
    now: datetime,
) -> NewSubscriber:
    """A validated subscriber from text fields (CSV columns, CLI options, a subscribe
    request); empty fields take the defaults. The schedule and the given name are validated
    by the functions the preferences page uses (`new_schedule`, `given_name_field`)."""

    def get(name: str, default: str) -> str:
        return (fields.get(name) or "").strip() or default

    status = parse_choice(SubscriberStatus, get("status", "pending"))
    name = get("name", "")
    chosen = PreferencesInput(
        categories=None,
        frequency=fields.get("frequency"),
        weekday=fields.get("weekday"),
        time=fields.get("time"),
        timezone=fields.get("timezone"),
        month_day=fields.get("month_day"),
        min_posts=fields.get("min_posts"),
        max_wait=fields.get("max_wait"),
    )
    return NewSubscriber(
        email=normalise_email(get("email", "")),
        name=clean_name(name) or None,
        status=status,
        categories=categories.resolve(get("categories", "")),
        schedule=new_schedule(chosen, default_schedule(defaults)),
        created_at=now,
        confirmed_at=now if status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED) else None,
        unsubscribed_at=now if status is SubscriberStatus.UNSUBSCRIBED else None,
        given_name=given_name_field(fields.get("given_name")),
    )


@dataclass(frozen=True, slots=True)
class RowError:
    """A CSV row that was not imported: its line number and why."""

    line: int
    reason: str


# Past this many rows, CSV rows are validated (email-validator: ~35 µs a row) on every core.
PARALLEL_ROWS = 5000
ROWS_PER_TASK = 2000
RawRow = tuple[int, dict[str, str] | None]  # (line number, fields; None = too many fields)
Converted = tuple[int, NewSubscriber | RowError]


def read_csv(
    stream: IO[str], defaults: DigestSettings, categories: CategoryIndex, now: datetime
) -> tuple[int, Generator[list[Converted]]]:
    """Parse a subscriber CSV (header row first): how many rows it has, and (line, subscriber
    or error) for each row, in chunks of ROWS_PER_TASK."""
    raw = list(_raw_rows(stream))
    return len(raw), _converted(raw, defaults, categories, now)


def _converted(
    raw: list[RawRow], defaults: DigestSettings, categories: CategoryIndex, now: datetime
) -> Generator[list[Converted]]:
    chunks = [raw[i : i + ROWS_PER_TASK] for i in range(0, len(raw), ROWS_PER_TASK)]
    workers = worker_count(len(raw), PARALLEL_ROWS)
    if workers == 1:
        yield from (_convert_rows(chunk, defaults, categories, now) for chunk in chunks)
        return
    with process_pool(workers) as pool:
        args = ([defaults] * len(chunks), [categories] * len(chunks), [now] * len(chunks))
        yield from pool.map(_convert_rows, chunks, *args)


def _raw_rows(stream: IO[str]) -> Iterator[RawRow]:
    reader = csv.DictReader(stream)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "email" not in header:
        raise ValidationError("the CSV needs a header row with at least an `email` column")
    reader.fieldnames = header
    for row in reader:
        yield reader.line_num, (None if None in row else row)


def _convert_rows(
    rows: Sequence[RawRow], defaults: DigestSettings, categories: CategoryIndex, now: datetime
) -> list[Converted]:
    out: list[Converted] = []
    for line, row in rows:
        if row is None:
            out.append((line, RowError(line, "more fields than the header has columns")))
            continue
        try:
            out.append((line, new_subscriber(row, defaults, categories, now)))
        except ValidationError as exc:
            out.append((line, RowError(line, str(exc))))
    return out


def write_csv(
    stream: IO[str], subscribers: Iterable[Subscriber], categories: CategoryIndex
) -> None:
    """Write subscribers as CSV that `read_csv` reads back (categories by display name)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for sub in subscribers:
        writer.writerow(
            [
                sub.email,
                sub.name or "",
                categories.names(sub.categories),
                sub.frequency.value,
                WEEKDAYS[sub.weekday],
                f"{sub.send_time:%H:%M}",
                sub.timezone,
                sub.status.value,
                "last" if sub.month_day == LAST_DAY else str(sub.month_day),
                str(sub.min_posts),
                wait_text(sub.max_wait),
                sub.given_name or "",
            ]
        )
