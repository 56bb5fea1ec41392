"""`feedpipe subscribers ...` and `feedpipe digest plan` through click's CliRunner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedpipe.cli import cli
from tests.helpers import write_post

T0 = "2026-03-01T00:00:00Z"
Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, sqlite_url: str) -> Run:
    """A site in tmp_path with two synced posts; returns an invoker bound to its config."""
    posts = tmp_path / "posts"
    posts.mkdir()
    write_post(posts, "alpha", "2026-02-01T09:00:00Z", '["Rust", "Distributed Systems"]')
    write_post(posts, "beta", "2026-02-02T09:00:00Z", '["Python"]')
    config = tmp_path / "config.toml"
    config.write_text(
        '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{posts}"\n[store]\nurl = "{sqlite_url}"\n'
        '[digest]\ntimezone = "Europe/Berlin"\nsend_time = "07:30"\n',
        encoding="utf-8",
    )

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin)

    assert invoke("sync", "--now", T0).exit_code == 0
    return invoke


def test_add_with_defaults_and_options(run: Run) -> None:
    result = run("subscribers", "add", "Ada@Example.COM", "--name", "Ada")
    assert result.exit_code == 0, result.output
    assert (
        "added Ada@example.com (pending; daily at 07:30 Europe/Berlin; categories: all)"
        in result.output
    )
    result = run(
        "subscribers", "add", "bob@example.com", "--categories", "rust, python",
        "--frequency", "weekly", "--weekday", "fri", "--time", "18:05",
        "--timezone", "Asia/Kolkata", "--confirmed",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "(active; weekly on Friday at 18:05 Asia/Kolkata; categories: Rust,Python)" in result.output
    )


def test_duplicate_add_is_case_insensitive(run: Run) -> None:
    assert run("subscribers", "add", "ada@example.com").exit_code == 0
    result = run("subscribers", "add", "ADA@example.COM")
    assert result.exit_code == 1
    assert result.stderr.strip() == "feedpipe: error: ADA@example.com is already subscribed"


def test_unknown_category_lists_the_known_ones(run: Run) -> None:
    result = run("subscribers", "add", "ada@example.com", "--categories", "Rust,Golang")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "feedpipe: error: unknown categories: Golang (known: Distributed Systems, Python, Rust)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-address"], "is not a valid email address"),
        (["a@example.com", "--time", "25:00"], "'25:00' is not a time of day as HH:MM"),
        (["a@example.com", "--timezone", "Mars/Base"], "'Mars/Base' is not an IANA time zone"),
        (["a@example.com", "--weekday", "someday"], "'someday' is not a weekday"),
    ],
)
def test_invalid_input_is_one_line(run: Run, args: list[str], message: str) -> None:
    result = run("subscribers", "add", *args)
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_import_reports_bad_rows_by_line_and_imports_the_rest(run: Run, tmp_path: Path) -> None:
    assert run("subscribers", "add", "taken@example.com").exit_code == 0
    csv_file = tmp_path / "subs.csv"
    csv_file.write_text(
        "Email,Name,Categories,Frequency,Weekday,Time,Timezone,Status\n"
        "one@example.com,One,Rust,daily,,08:00,UTC,active\n"  # line 2
        "not an address,,,,,,,\n"  # line 3
        'two@example.com,"Two, Esq.","Rust,Python",weekly,tue,09:15,Europe/Berlin,\n'  # 4
        "three@example.com,,Golang,,,,,\n"  # line 5
        "four@example.com,,,,,7pm,,\n"  # line 6
        "ONE@example.com,,,,,,,\n"  # line 7: repeats line 2
        "taken@example.com,,,,,,,\n"  # line 8: already stored
        "five@example.com,,,,,,,,extra\n"  # line 9
        "six@example.com,,,,,,,snoozed\n"  # line 10
        "seven@example.com\n",  # line 11: short rows take defaults
        encoding="utf-8",
    )
    result = run("subscribers", "import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "imported 3 subscribers; 7 rows skipped" in result.stdout
    lines = result.stderr.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == [
        f"line {n}" for n in (3, 5, 6, 7, 8, 9, 10)
    ]
    assert "unknown categories: Golang (known: Distributed Systems, Python, Rust)" in lines[1]
    assert "repeats line 2" in lines[3] and "already subscribed" in lines[4]
    listed = run("subscribers", "list").stdout
    assert "two@example.com" in listed and "Two, Esq." in listed and "seven@example.com" in listed


def test_import_without_email_header_is_an_error(run: Run, tmp_path: Path) -> None:
    csv_file = tmp_path / "subs.csv"
    csv_file.write_text("address,name\na@example.com,A\n", encoding="utf-8")
    result = run("subscribers", "import", str(csv_file))
    assert result.exit_code == 1 and "header row" in result.stderr


def test_list_filters(run: Run) -> None:
    run("subscribers", "add", "a@example.com", "--categories", "Rust", "--confirmed")
    run("subscribers", "add", "b@example.com", "--categories", "Python", "--frequency", "weekly")
    run("subscribers", "add", "c@example.com")
    result = run("subscribers", "list")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == [
        "ID", "EMAIL", "NAME", "STATUS", "SCHEDULE", "CATEGORIES",
    ]  # fmt: skip
    assert result.stdout.rstrip().endswith("3 subscribers")

    def emails(*args: str) -> list[str]:
        out = run("subscribers", "list", *args).stdout.splitlines()[2:-1]
        return [line.split()[1] for line in out]

    assert emails("--status", "active") == ["a@example.com"]
    assert emails("--category", "rust") == ["a@example.com", "c@example.com"]
    assert emails("--frequency", "weekly") == ["b@example.com"]
    assert run("subscribers", "list", "--category", "Golang").exit_code == 1


def test_remove(run: Run) -> None:
    run("subscribers", "add", "a@example.com")
    result = run("subscribers", "remove", "A@EXAMPLE.com")
    assert result.exit_code == 0 and "removed a@example.com" in result.stdout
    again = run("subscribers", "remove", "a@example.com")
    assert again.exit_code == 1 and "a@example.com is not subscribed" in again.stderr


def test_export_round_trip(run: Run, tmp_path: Path) -> None:
    run("subscribers", "add", "a@example.com", "--name", "Ann, A.", "--confirmed",
        "--given-name", "Annie")  # fmt: skip
    run(
        "subscribers", "add", "b@example.com", "--categories", "distributed systems,Rust",
        "--frequency", "weekly", "--weekday", "sun", "--time", "06:45",
        "--timezone", "America/St_Johns",
    )  # fmt: skip
    exported = run("subscribers", "export")
    assert exported.exit_code == 0
    assert exported.stdout.splitlines()[0] == (
        "email,name,categories,frequency,weekday,time,timezone,status,month_day,min_posts,"
        "max_wait,given_name"
    )
    assert exported.stdout.splitlines()[1].endswith(",30d,Annie")
    for email in ("a@example.com", "b@example.com"):
        assert run("subscribers", "remove", email).exit_code == 0
    csv_file = tmp_path / "export.csv"
    csv_file.write_text(exported.stdout, encoding="utf-8")
    imported = run("subscribers", "import", str(csv_file))
    assert "imported 2 subscribers; 0 rows skipped" in imported.stdout
    assert run("subscribers", "export").stdout == exported.stdout


def test_digest_plan_shows_editions_without_sending(run: Run, tmp_path: Path) -> None:
    run("subscribers", "add", "rust@example.com", "--categories", "Rust", "--confirmed",
        "--timezone", "UTC", "--time", "08:00", "--now", T0)  # fmt: skip
    run("subscribers", "add", "all@example.com", "--confirmed", "--timezone", "UTC",
        "--time", "08:00", "--now", T0)  # fmt: skip
    run("subscribers", "add", "pending@example.com", "--now", T0)
    write_post(tmp_path / "posts", "gamma", "2026-03-01T10:00:00Z", '["Rust", "Python"]')
    assert run("sync", "--now", "2026-03-01T10:00:00Z").exit_code == 0
    first = run("digest", "plan", "--now", "2026-03-02T08:00:00Z")
    assert first.exit_code == 0, first.output
    rows = first.stdout.splitlines()
    assert rows[0] == "plan at 2026-03-02 08:00:00 UTC"
    assert rows[1].split() == ["EDITION", "POSTS", "SUBSCRIBERS", "SAMPLE"]
    # Both get one section "Rust" holding gamma: one shared edition.
    assert rows[3].split()[1:] == ["1", "2", "rust@example.com,", "all@example.com"]
    assert rows[-1] == "2 due: 2 emails in 1 edition; 0 with nothing new"
    assert run("digest", "plan", "--now", "2026-03-02T08:00:00Z").stdout == first.stdout
    early = run("digest", "plan", "--now", "2026-03-01T07:59:00Z").stdout
    assert early.splitlines()[-1] == "0 due: 0 emails in 0 editions; 0 with nothing new"


def test_digest_plan_rejects_a_bad_now(run: Run) -> None:
    result = run("digest", "plan", "--now", "yesterday")
    assert result.exit_code == 1
    assert "--now 'yesterday' is not an ISO 8601 time" in result.stderr


def test_large_import_is_validated_in_parallel_with_the_same_result(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("feedpipe.subscriptions.fields.PARALLEL_ROWS", 2)
    monkeypatch.setattr("feedpipe.subscriptions.fields.ROWS_PER_TASK", 3)
    csv_file = tmp_path / "many.csv"
    rows = [f"p{n}@example.com,,Rust,daily,,08:00,UTC,active" for n in range(10)]
    rows.insert(4, "not an address,,,,,,,")
    csv_file.write_text("email,name,categories,frequency,weekday,time,timezone,status\n"
                        + "\n".join(rows) + "\n", encoding="utf-8")  # fmt: skip
    result = run("subscribers", "import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "imported 10 subscribers; 1 row skipped" in result.stdout
    assert result.stderr.strip().startswith("line 6:")


def test_every_cadence_through_add_update_csv_and_export(run: Run, tmp_path: Path) -> None:
    added = run(
        "subscribers", "add", "m@example.com", "--frequency", "monthly", "--month-day", "last",
        "--min-posts", "3", "--max-wait", "7d", "--time", "08:00", "--timezone", "UTC",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "monthly on the last day at 08:00 UTC, once 3 posts are new (at most 7d)" in added.stdout
    updated = run("subscribers", "update", "m@example.com", "--frequency", "instant")
    assert updated.exit_code == 0, updated.output
    assert "(pending; instant (within 5 min), once 3 posts are new (at most 7d);" in updated.stdout
    kept = run("subscribers", "update", "m@example.com", "--min-posts", "1", "--categories", "Rust")
    assert "(pending; instant (within 5 min); categories: Rust)" in kept.stdout
    bad = run("subscribers", "update", "m@example.com", "--month-day", "31")
    assert bad.exit_code == 1
    assert "'31' is not a day of the month (1 to 28, or last)" in bad.stderr
    csv_file = tmp_path / "cadences.csv"
    csv_file.write_text(
        "email,frequency,month_day,min_posts,max_wait,time,timezone\n"
        "a@example.com,monthly,15,,,09:00,Asia/Kolkata\n"
        "b@example.com,weekly,,2,36h,,\n"
        "c@example.com,monthly,29,,,,\n",
        encoding="utf-8",
    )
    imported = run("subscribers", "import", str(csv_file))
    assert "imported 2 subscribers; 1 row skipped" in imported.stdout
    assert "line 4: '29' is not a day of the month" in imported.stderr
    listed = run("subscribers", "list").stdout
    assert "monthly on day 15 at 09:00 Asia/Kolkata" in listed
    assert "weekly on Monday at 07:30 Europe/Berlin, once 2 posts are new (at most 36h)" in listed
    exported = run("subscribers", "export").stdout.splitlines()
    assert "a@example.com,,,monthly,mon,09:00,Asia/Kolkata,pending,15,1,30d," in exported


def test_given_name_through_add_update_import_and_export(run: Run, tmp_path: Path) -> None:
    added = run("subscribers", "add", "g@example.com", "--name", "Ann Example", "--given-name",
                " Ann\r\n ")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "categories: all; greeted as Ann)" in added.stdout  # cleaned to one line
    changed = run("subscribers", "update", "g@example.com", "--given-name", "Annie")
    assert changed.exit_code == 0 and "greeted as Annie)" in changed.stdout
    kept = run("subscribers", "update", "g@example.com", "--time", "09:00")
    assert "greeted as Annie)" in kept.stdout  # an option not given stays
    too_long = run("subscribers", "update", "g@example.com", "--given-name", "x" * 201)
    assert too_long.exit_code == 1
    assert "the given name is longer than 200 characters" in too_long.stderr
    cleared = run("subscribers", "update", "g@example.com", "--given-name", "")
    assert cleared.exit_code == 0 and "greeted as" not in cleared.stdout
    csv_file = tmp_path / "given.csv"
    csv_file.write_text(
        "email,name,given_name\n"
        "h@example.com,Hanna Schmidt,Hanni\n"
        f"i@example.com,,{'y' * 201}\n"
        "j@example.com,,\n",
        encoding="utf-8",
    )
    imported = run("subscribers", "import", str(csv_file))
    assert "imported 2 subscribers; 1 row skipped" in imported.stdout
    assert "line 3: the given name is longer than 200 characters" in imported.stderr
    exported = run("subscribers", "export").stdout.splitlines()
    assert [line.rsplit(",", 1)[1] for line in exported] == ["given_name", "", "Hanni", ""]


def test_update_validates_every_field_as_the_preferences_page(run: Run) -> None:
    run("subscribers", "add", "v@example.com")
    bad = run("subscribers", "update", "v@example.com", "--categories", "Golang",
              "--time", "25:00", "--given-name", "z" * 300)  # fmt: skip
    assert bad.exit_code == 1
    for part in ("given_name: the given name is longer", "categories: unknown categories: Golang",
                 "time: '25:00' is not a time of day"):  # fmt: skip
        assert part in bad.stderr
    listed = run("subscribers", "list").stdout
    assert "daily at 07:30 Europe/Berlin" in listed  # nothing changed
