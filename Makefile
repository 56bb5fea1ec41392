# feedpipe: two commands on a fresh machine: `make demo` (main job) and `make test` (tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/feedpipe --config config.toml run --once
	$(BIN)/feedpipe --config config.toml status
	@echo "feeds written under ./public (open public/feed.xml in a browser); digests as .eml files under ./outbox"

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/feeds.py

clean:
	rm -rf $(VENV) public feedpipe.db .pytest_cache .mypy_cache .ruff_cache
