# kubefab: the two commands of the README.
#   make test   install what is needed (apt packages, .venv) and run every test
#   make demo   bring up the built-in lab and run kubefab on it
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo deps apt unit clean bench

# Debian packages first: on a fresh machine python3-venv (and python3) come from here.
apt:
	./scripts/ensure-apt.sh

$(STAMP): requirements.txt requirements-dev.txt | apt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

deps: apt $(STAMP)

test: deps
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest tests/unit

demo: deps
	./scripts/demo.sh

bench: deps
	$(PY) scripts/bench.py

clean:
	rm -rf $(VENV) .pytest_cache
