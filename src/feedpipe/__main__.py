"""Entry point for `python -m feedpipe` and the `feedpipe` script: Ctrl-C is one clean line
from the first instant (also while the command line's modules are still loading)."""

from __future__ import annotations

import gc
import signal
import sys
from types import FrameType


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    sys.stderr.write("feedpipe: interrupted: nothing lost (nothing had started)\n")
    sys.exit(130)


def main() -> None:
    signal.signal(signal.SIGINT, _interrupted)
    # No collection while the command loads its modules (each import's objects live as long
    # as the process: a collection finds nothing, and a full one during SQLAlchemy's import
    # costs tens of ms); `feedpipe.cli.common.loaded` freezes them and collects from then on.
    gc.disable()
    from feedpipe.cli import main as cli_main

    try:  # the command group takes Ctrl-C over when the command starts (FeedpipeGroup)
        cli_main()
    finally:  # the command is over (click exits by SystemExit): a late Ctrl-C changes nothing
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    main()
