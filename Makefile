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

# The main job on built-in data: meta-learn briefly on generated faces, fine-tune on a real
# portrait, animate it from a generated driving clip (README.md, "The demo"). Rerun to resume.
DEMO_OUT ?= demo_out
demo: $(STAMP)
	$(BIN)/tfhead-demo --out_dir=$(DEMO_OUT)

# The whole suite, slow end-to-end tests included (what CI runs), in TEST_WORKERS processes
# (pytest-xdist; most of a test's time is single-threaded tracing, so 2 workers fill 2 cores).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist worksteal --durations=10
test: $(STAMP)
	$(PYTEST)

# Without the tests marked slow.
test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/networks.py
	$(BIN)/python benchmarks/landmarks.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/precision.py
	$(BIN)/python benchmarks/export.py
	$(BIN)/python benchmarks/learning.py
	test -d $(DEMO_OUT)/astronaut_person || $(MAKE) demo
	$(BIN)/python benchmarks/realtime.py --teacher=$(DEMO_OUT)/astronaut_person --driver=$(DEMO_OUT)/driver.mp4
	$(BIN)/python benchmarks/quantization.py --person=$(DEMO_OUT)/astronaut_person
	$(BIN)/python benchmarks/machine_speed.py --model=$(DEMO_OUT)/models/astronaut.int8.tflite

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(DEMO_OUT)
