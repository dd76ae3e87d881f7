# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test venv system-deps bench eval train train-causal clean

demo: $(STAMP)
	$(VENV)/bin/lipdub demo -o out/demo.mp4

# Two pytest-xdist workers (one per core of CI's 2-core machine), a test module per worker at a time (its module
# fixtures are built once); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope

bench: $(STAMP)
	$(PY) -m bench.speed

# training/ needs a checkout with the shared clips ($$LIPDUB_DATA, default ../shared/data); none of it ships.
eval: $(STAMP)
	$(PY) -m training.evaluate

# Rebuild lipdub/assets/* and their cards from training/dataset.json (a file holding the same arrays is left as is):
# each model from all clips (--motion-model research) and from the permissively licensed ones (permissive).
train: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m training.train_motion --no-heldout  # one BLAS thread: ~10x faster small fits
	OMP_NUM_THREADS=1 $(PY) -m training.train_motion --no-heldout --sources permissive

train-causal: $(STAMP)
	$(PY) -m training.train_causal --no-heldout
	$(PY) -m training.train_causal --no-heldout --sources permissive

venv: $(STAMP)

# espeak-ng (GPL) is used only as an external program: G2P for non-English transcripts and the demo's voice.
# chromium (BSD-3-Clause and others) only runs the web app's browser test (tests/test_app.py).
system-deps:
	@command -v espeak-ng >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q espeak-ng; }
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m lipdub.core.assets --check
	touch $(STAMP)

clean:
	rm -rf $(VENV) out
