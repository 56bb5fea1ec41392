"""Entry point for `python -m feedpipe`."""

from feedpipe.cli import main

main()
