# feedpipe: two commands on a fresh machine: `make demo` (main job) and `make test` (tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded default: SQLite, the sample posts, .eml files in ./outbox.
# The store first sees the sample on 1 June 2026, when its posts are still to come out, and the
# sample subscribers subscribe that day; the cycle on Monday 2 November 2026 at 13:00 UTC mails
# the digests due then (Margaret's 06:00 in Kolkata was 12.5 h ago: merged into her next one).
demo: $(STAMP)
	$(BIN)/feedpipe --config config.toml build --now 2026-06-01T00:00:00Z
	$(BIN)/feedpipe --config config.toml subscribers import examples/subscribers.csv --now 2026-06-01T00:00:00Z
	$(BIN)/feedpipe --config config.toml run --once --now 2026-11-02T13:00:00Z
	$(BIN)/feedpipe --config config.toml status
	@echo "feeds: ./public (public/feed.xml, public/feeds.opml); digests: ./outbox/*.eml; serve them with: .venv/bin/feedpipe serve"

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian's Chromium for the browser test (never a downloaded browser) and Dovecot for the IMAP
# test (tests/imap_server.py starts its own instance); without root or apt those tests skip and
# say why.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the browser test will skip"; \
	  else echo "chromium not found: the browser test will skip (apt-get install chromium)"; fi; }
	@test -x /usr/lib/dovecot/imap || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null) \
	      || echo "dovecot-imapd could not be installed: the IMAP test will skip"; \
	  else echo "dovecot not found: the IMAP test will skip (apt-get install dovecot-imapd)"; fi; }

test: $(STAMP) system-deps lint
	$(BIN)/pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/feeds.py

# Everything `make demo` and the Quick start made (feeds, digests, previews, the SQLite store
# with its WAL side files), the venv and the tools' caches (tests/test_readme.py checks it).
clean:
	rm -rf $(VENV) public outbox preview feedpipe.db feedpipe.db-wal feedpipe.db-shm \
	  feedpipe.db.worker.lock \
	  .pytest_cache .mypy_cache .ruff_cache
