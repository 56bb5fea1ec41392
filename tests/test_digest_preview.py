"""`feedpipe digest preview`: the next digest as .html, .txt and a parseable .eml; no changes."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import lxml.html
from click.testing import CliRunner

from feedpipe.cli import cli
from tests.helpers import post, write_config


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_preview_for_a_subscriber_writes_three_files_and_changes_nothing(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "old", categories="[Rust]", date="2026-01-01T00:00:00Z")
    config = write_config(tmp_path, posts)
    assert run(config, "sync", "--now", "2026-01-02T00:00:00Z")[0] == 0
    code, _, err = run(
        config, "subscribers", "add", "ann@example.com", "--name", "Ann", "--categories", "rust",
        "--confirmed", "--now", "2026-01-03T00:00:00Z",
    )  # fmt: skip
    assert code == 0, err
    (posts / "new-one.md").write_text(
        "---\ntitle: '5 < 6 && \"x\"'\ndate: 2026-01-04T00:00:00Z\ncategories: [Rust]\n---\nBody\n",
        encoding="utf-8",
    )
    assert run(config, "sync", "--now", "2026-01-04T01:00:00Z")[0] == 0
    out_dir = tmp_path / "pv"
    args = ["digest", "preview", "--email", "ANN@example.com", "--out", str(out_dir)]
    code, out, err = run(config, *args, "--now", "2026-01-05T09:00:00Z")
    assert code == 0, err
    assert "1 post for ann@example.com" in out
    eml = next(out_dir.glob("*.eml")).read_bytes()
    message = email.message_from_bytes(eml, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"].addresses[0].addr_spec == "ann@example.com"
    text, html = (p.get_content() for p in message.iter_parts())
    assert '5 < 6 && "x"' in text and "old" not in text.split("\n")[0]
    assert "5 &lt; 6 &amp;&amp;" in html  # escaped once, and shown literally:
    page = lxml.html.fromstring(html.encode())  # an HtmlElement; lxml-stubs say _Element
    assert '5 < 6 && "x"' in page.text_content()  # type: ignore[attr-defined]
    assert next(out_dir.glob("*.html")).read_text(encoding="utf-8").startswith("<!DOCTYPE html")
    # previewing did not move the watermark: the same digest previews again
    code, out, _ = run(config, *args, "--now", "2026-01-05T09:00:00Z")
    assert code == 0 and "1 post for" in out


def test_preview_with_nothing_new_says_so(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "old", categories="[Rust]", date="2026-01-01T00:00:00Z")
    config = write_config(tmp_path, posts)
    run(config, "sync", "--now", "2026-01-02T00:00:00Z")
    run(config, "subscribers", "add", "late@example.com", "--now", "2026-02-01T00:00:00Z")
    args = ("digest", "preview", "--email", "late@example.com", "--now", "2026-03-01T00:00:00Z")
    code, out, _ = run(config, *args)
    assert code == 0 and "nothing new for late@example.com since 2026-02-01 00:00 UTC" in out
    code, out, _ = run(config, "digest", "preview", "--now", "2026-03-01T00:00:00Z")
    assert code == 0 and "1 post for preview@example.com" in out  # the newest, whatever its age


def test_preview_with_unknown_category_lists_known_ones(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", categories="[Rust, Go]")
    config = write_config(tmp_path, posts)
    run(config, "sync")
    code, _, err = run(config, "digest", "preview", "--categories", "Haskell")
    assert code == 1 and "unknown categories: Haskell" in err and "Go, Rust" in err
