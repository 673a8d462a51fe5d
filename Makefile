# `make run` and `make test` each set everything up (a .venv from pyproject.toml) first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench screenshots package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## open the app on the built-in sandbox (demo data, no keys needed)
	$(PY) -m optout_desk --demo

test: $(STAMP)  ## lint, type-check and run the whole test suite headless
	bash scripts/test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check optout_desk tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench

package: $(STAMP)  ## build the installer for this OS into dist/ (Linux: a .deb)
	$(PY) -c 'import PyInstaller' 2>/dev/null || $(PY) -m pip install --quiet -e '.[package]'
	PY=$(PY) bash packaging/build.sh

screenshots: $(STAMP)  ## render each page in demo mode to docs/screenshots/*.png (offscreen)
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) build dist
