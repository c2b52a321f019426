# The README's commands. Every target installs what it needs into .venv first, so a fresh machine
# with Python 3.11 needs nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfhead-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test test-fast benchmarks clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: animate a built-in portrait. Not implemented yet (README.md, "What works today").
demo: $(STAMP)
	@echo "tfhead: the main job (fine-tune on a portrait, animate it from a driving video) is not"
	@echo "implemented yet; see README.md, 'What works today'. 'make test' runs the test suite."
	@exit 2

# The whole suite, slow end-to-end tests included (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest tests

# Without the tests marked slow.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow"

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/networks.py
	$(BIN)/python benchmarks/landmarks.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
