# Two commands: `make run` (the bot with the sample KB on SQLite: web app + console chat) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup system-deps run test lint bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# chiVe word vectors from the pinned ja-ginza wheel (knowledge/vectors.py), fetched from the package index
VECTORS := $(VENV)/share/kosodate-concierge/ja-vectors.npz
$(VECTORS): scripts/build_vectors.py | $(BIN)/.installed
	$(BIN)/python scripts/build_vectors.py --out $@

setup: $(BIN)/.installed $(VECTORS)

run: setup
	$(BIN)/concierge db upgrade
	$(BIN)/concierge serve --console

# Servers the tests run for real: Dovecot (IMAP) from Debian's packages; PostgreSQL is started by the tests.
system-deps:
	bash scripts/ensure-system-deps.sh

lint: setup
	$(BIN)/concierge kb check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint system-deps
	$(BIN)/pytest -n 4 --dist loadfile  # files in parallel: much of the suite waits on servers and timeouts

bench: setup
	$(BIN)/python bench/match.py
	$(BIN)/python bench/line_webhook.py
