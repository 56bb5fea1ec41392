"""A click group whose commands load their module only when one of them is run or asked for."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a command lives (`module`, its `attribute`) and the first sentence of its help,
    which `--help` lists without importing the module (tests/test_startup.py checks that it
    matches what the command itself says)."""

    module: str
    attribute: str
    summary: str


class LazyGroup(click.Group):
    """`lazy` names the commands to import on first use: running one, its `--help`, shell
    completion. The group's own `--help` and `--version` import none of them."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = self.lazy.get(cmd_name)
        if found is not None and cmd_name not in self.commands:
            command = getattr(importlib.import_module(found.module), found.attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with a stand-in carrying the summary for each command not loaded
        (click shortens it exactly as it would the command's own help)."""
        shown: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            found = self.lazy.get(name)
            if found is not None and name not in self.commands:
                shown.append((name, click.Command(name, help=found.summary)))
            elif (command := super().get_command(ctx, name)) is not None and not command.hidden:
                shown.append((name, command))
        if shown:
            limit = formatter.width - 6 - max(len(name) for name, _ in shown)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in shown])
