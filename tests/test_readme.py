"""The README's Quick start, run verbatim on a copy of the sample config and posts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def fenced_block(text: str, heading: str, lang: str) -> list[str]:
    """The lines of the first ```lang block after `heading`."""
    section = text[text.index(heading) :]
    match = re.search(rf"^```{lang}\n(.*?)^```$", section, re.S | re.M)
    assert match, f"no ```{lang} block under {heading!r} in README.md"
    return match.group(1).splitlines()


def transcript(lines: list[str]) -> list[tuple[str, list[str]]]:
    """A console block as (command, expected output lines) pairs."""
    pairs: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        else:
            pairs[-1][1].append(line)
    return pairs


def pattern(expected: str) -> re.Pattern[str]:
    """An expected line as a regex: `…` stands for any non-empty text, a run of spaces for
    any (table columns widen with what `…` hides)."""
    parts = (re.escape(part) for part in expected.split("…"))
    return re.compile(re.sub(r"(\\ )+", r"\\s+", ".+?".join(parts)))


def without_comment(command: str) -> str:
    return re.sub(r"\s+# .*$", "", command)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the repository's sample, with a `.venv/bin/activate` that puts this checkout's
    `feedpipe` on PATH (the Quick start starts by sourcing it)."""
    shutil.copy(REPO / "config.toml", tmp_path)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    shim = bin_dir / "feedpipe"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m feedpipe "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    (bin_dir / "activate").write_text(
        f'PATH="{bin_dir}:$PATH"; export PATH\nPYTHONPATH="{REPO / "src"}"; export PYTHONPATH\n',
        encoding="utf-8",
    )
    return tmp_path


def test_quick_start_runs_verbatim_and_prints_what_the_readme_says(sample: Path) -> None:
    text = README.read_text(encoding="utf-8")
    commands = fenced_block(text, "## Quick start", "sh")
    expected = transcript(fenced_block(text, "## Quick start", "console"))
    assert commands[0] == ". .venv/bin/activate"
    assert [without_comment(c) for c in commands[1:]] == [c for c, _ in expected], (
        "the console transcript in README.md must follow the Quick start commands"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    for command, (_, lines) in zip(commands[1:], expected, strict=True):
        done = subprocess.run(
            ["bash", "-c", f". .venv/bin/activate && {command}"],
            cwd=sample,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        printed = done.stdout.splitlines()
        assert done.returncode == 0, f"{command}\n{done.stdout}"
        assert len(printed) == len(lines), f"{command}\n{done.stdout}"
        for got, want in zip(printed, lines, strict=True):
            assert pattern(want).fullmatch(got), f"{command}: {got!r} is not {want!r}"
    previews = sorted(p.suffix for p in (sample / "preview").iterdir())
    assert previews == [".eml", ".html", ".txt"]
    assert (sample / "public" / "feed.xml").is_file()


def test_make_clean_removes_everything_make_demo_made(sample: Path) -> None:
    """`make demo` (the venv taken as built, its feedpipe this checkout's), the Quick start's
    preview, then `make clean`: only what was there before is left."""
    shutil.copy(REPO / "Makefile", sample)
    before = {p.relative_to(sample) for p in sample.rglob("*") if ".venv" not in p.parts}
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    env["PYTHONPATH"] = str(REPO / "src")
    make = ["make", "--no-print-directory", "-o", ".venv/.installed"]
    demo = subprocess.run(
        [*make, "demo"], cwd=sample, env=env, capture_output=True, text=True, timeout=300
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    preview = [".venv/bin/feedpipe", "digest", "preview"]
    assert subprocess.run(preview, cwd=sample, env=env, capture_output=True).returncode == 0
    made = {p.relative_to(sample) for p in sample.rglob("*")} - before
    assert {Path("public"), Path("outbox"), Path("preview"), Path("feedpipe.db")} <= made
    clean = subprocess.run([*make, "clean"], cwd=sample, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert {p.relative_to(sample) for p in sample.rglob("*")} == before
