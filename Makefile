# One command each: `make run` (set up and open the app), `make test` (set up and run every check).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint exe bench clean

$(VENV)/.run-ok: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-ok: pyproject.toml $(VENV)/.run-ok
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.run-ok
	$(PY) -m app $(ARGS)

lint: $(VENV)/.test-ok
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy app

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

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
