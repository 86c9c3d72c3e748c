# One command each: `make run` (set up and open the app), `make test` (set up and run every check).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint exe bench bench-gui clean system-run system-test system-bench

# System packages (Tk, Xvfb, ncat, ...): installed when missing, see tools/system-packages.
system-run system-test system-bench:
	PYTHON=$(PYTHON) sh tools/system-packages $(@:system-%=%)

# Room announcements and browsing stay on loopback in every test, benchmark and smoke test
# (never for `make run`: a real user's room is announced on the real network).
test bench bench-startup bench-gui bench-files: export PARLEY_MDNS_INTERFACES = 127.0.0.1

$(VENV)/.run-ok: pyproject.toml | system-run
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-ok: pyproject.toml $(VENV)/.run-ok
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: system-run $(VENV)/.run-ok
	$(PY) -m app $(ARGS)

lint: $(VENV)/.test-ok
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy app

# Every check: lint and types, then every test, the built executable's smoke tests included.
test: system-test lint exe
	PARLEY_EXE=dist/Parley $(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache

# The double-click executable: dist/Parley (dist/Parley.exe on Windows, dist/Parley.app on macOS).
$(VENV)/.build-ok: pyproject.toml $(VENV)/.run-ok
	$(PY) -m pip install -q -e '.[build]'
	touch $@

exe: $(VENV)/.build-ok
	$(VENV)/bin/pyinstaller --noconfirm build_exe.spec

# Parley's start-up time and size beside a hello-world Tk window built the same way (Xvfb).
.PHONY: bench-startup
bench-startup: exe $(VENV)/.test-ok
	$(PY) -m benchmarks.startup

# The host under load beside `ncat --chat` on 127.0.0.1 (about 5 minutes; needs ncat).
# BENCH_ARGS="--scenario flood --runs 5" runs a part; see benchmarks/README.md.
bench: system-bench $(VENV)/.run-ok
	$(PY) -m benchmarks.load $(BENCH_ARGS)

# The window under a 10,000-message burst: delivery-to-drawn latency and the longest UI stall.
bench-gui: $(VENV)/.test-ok
	$(PY) benchmarks/gui_burst.py

# One file (1 GiB; BENCH_ARGS="--size 100MB" for less) through a host over TLS on loopback, in
# the settled and the warm memory state (benchmarks/README.md),
# beside a plain TLS copy of the same bytes; chat latency during it; the host's peak memory.
.PHONY: bench-files
bench-files: $(VENV)/.test-ok
	$(PY) -m benchmarks.files $(BENCH_ARGS)
