# kubefab: the two commands of the README.
#   make test   install what is needed (apt packages, .venv) and run every test
#   make demo   bring up the built-in lab and run kubefab on it
#   make fuzz   the input fuzzer at length (FUZZ_EXAMPLES per property; the unit suite runs a few)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo deps apt unit clean bench lab-k8s fuzz

# Debian packages first: on a fresh machine python3-venv (and python3) come from here.
apt:
	./scripts/ensure-apt.sh

$(STAMP): requirements.txt requirements-dev.txt | apt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

deps: apt $(STAMP)

# The real Kubernetes components for the lab, built from their Go modules into
# /var/cache/kubefab-lab (outside the repository; a warm cache makes this a no-op).
lab-k8s: apt
	bash tests/lab/k8s/build.sh all

# Two pytest runs side by side: the lab tests (one module after another) and the rest.
test: deps lab-k8s
	./scripts/test.sh $(PY)

unit: $(STAMP)
	$(PY) -m pytest tests/unit

demo: deps lab-k8s
	./scripts/demo.sh

bench: deps lab-k8s
	$(PY) scripts/bench.py

# Property-based fuzzing of everything kubefab reads (tests/unit/test_fuzz.py); prints the
# examples run, the classes of errors found and the slowest case. Failures are kept in .hypothesis/.
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	KUBEFAB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/unit/test_fuzz.py -p no:cacheprovider -q -s

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
