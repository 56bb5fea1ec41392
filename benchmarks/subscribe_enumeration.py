"""POST /api/subscribe medians per address state (issue 15: timing must not tell them apart).

PYTHONPATH=src python benchmarks/subscribe_enumeration.py [--per-state 100]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from feedpipe.clock import FixedClock
from feedpipe.web import WebConfig, create_app
from feedpipe.web.guard import Limits
from feedpipe.web.outbox import OutboxMailer
from feedpipe.web.ratelimit import Rate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*: the set-up

from tests.test_web_helpers import make_web
from tests.web_timing import measure, seed, spread

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-state", type=int, default=100)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    limits = Limits(Rate(10**6, 60), Rate(10**6, 60), Rate(1, 900))
    with tempfile.TemporaryDirectory() as root:
        clock = FixedClock(datetime(2026, 3, 1, 8, tzinfo=UTC))
        web = make_web(Path(root), args.corpus, clock, limits)
        app = create_app(web.fp, OutboxMailer(web.fp), WebConfig(limits=limits))  # the real one
        pools = seed(web.fp.store, "bench", args.per_state)
        timings = measure(app, pools, random.Random(15))
        web.fp.close()
    medians, relative = timings.medians(), timings.relative()
    print(f"{'state':>13}  {'median':>9}  {'vs round':>9}")
    for state in medians:
        print(f"{state:>13}  {medians[state]:6.3f} ms  {relative[state]:+6.3f} ms")
    print(f"{'spread':>13}  {spread(medians):6.3f} ms  {spread(relative):6.3f} ms")


if __name__ == "__main__":
    main()
