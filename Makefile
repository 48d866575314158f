# Two commands do all set-up on a fresh Linux machine (Python 3.11+):
#   make run    create .venv, install torch and the project, run everything (embedded PostgreSQL and Redis)
#   make test   the same set-up, then the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.14.1 torchvision==0.29.1

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[worker,dev]'
	touch $@

.PHONY: install run test check
install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/imagine run

test: $(VENV)/.installed
	$(VENV)/bin/pytest

check: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy bot db domain imagine inference bench tests
