"""The sample config.toml: valid as is, and with every commented example uncommented."""

from __future__ import annotations

import re
from pathlib import Path

from feedpipe.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = re.compile(r"^(\s*)#\s?([a-z_]+\s*=.*)$")  # "# key = value", not prose


def test_every_commented_example_is_valid_when_uncommented(tmp_path: Path) -> None:
    lines = (REPO / "config.toml").read_text(encoding="utf-8").splitlines()
    examples = [m for m in map(EXAMPLE.match, lines) if m]
    assert len(examples) >= 8, "the sample shows its optional keys as commented examples"
    text = "\n".join(EXAMPLE.sub(r"\1\2", line) for line in lines) + "\n"
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path, env={})
    assert settings.email.dkim_selector == "mail"
    assert settings.email.dkim_domain == "blog.example.com"
    assert settings.email.smtp.username == "mailer"
    assert settings.worker.metrics_port == 9108
    assert settings.feeds.base_url == "https://blog.example.com/feeds"
