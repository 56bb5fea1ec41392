"""schemathesis against /openapi.json: generated requests never get a server error.

Driven through Hypothesis directly: schemathesis' pytest plugin does not load on pytest 9.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from feedpipe.clock import FixedClock
from tests.test_web_helpers import ADMIN, make_web

EXAMPLES = 40


def _check_operation(operation: Any) -> int:
    calls = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        nonlocal calls
        for extra in ({}, {"Authorization": f"Bearer {ADMIN}"}):
            case.headers = {**(case.headers or {}), **extra}
            response = case.call()
            calls += 1
            assert response.status_code < 500, (case.method, case.path, response.text)

    run()
    return calls


def test_no_server_errors(tmp_path: Path, corpus_dir: Path, clock: FixedClock) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    schema = schemathesis.openapi.from_asgi("/openapi.json", w.app)
    # an Err (an operation schemathesis cannot load) has no .ok(): the test fails on it
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/api/subscribe", "/api/admin/build"}
    calls = sum(_check_operation(op) for op in operations)
    assert calls >= len(operations) * 2
    w.fp.close()
