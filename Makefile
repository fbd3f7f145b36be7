# make run   : set up .venv if needed, execute the notebook headless, write runs/<RUN_NAME>/
# make model-check : execute notebooks/model_check.ipynb headless (TASK, MODEL, LEVEL), write runs/<CHECK_NAME>/
# make test  : set up .venv if needed, unit tests, nbval + papermill over every cell, lint
# make test-slow : the long acceptance runs (tests marked slow); .ci/run runs it after make test
# make bench : the benchmark table (ratios measured side by side)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed before requirements.txt; the default is the CPU build that lies on this
# machine's disk. Any torch>=2.4 works: make TORCH_SPEC="torch>=2.4" install
TORCH_SPEC ?= torch==2.13.0
RUN_NAME ?= notebook
CHECK_NAME ?= model-check
TASK ?= lm
MODEL ?= builtin
LEVEL ?= quick
# make test-colab : the notebook's Colab path under Colab's pinned package versions (.venv-colab)
COLAB_VENV ?= .venv-colab
PYTEST_FLAGS ?= -q -p no:cacheprovider

.PHONY: install run model-check test unit nbval lint bench clean test-colab test-slow

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt helpers/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q -e ./helpers
	touch $@

# a second `make run` keeps the first executed notebook: training.ipynb, then training-2.ipynb, ...
run: install
	mkdir -p runs/$(RUN_NAME)
	out=runs/$(RUN_NAME)/training.ipynb; n=2; \
	while [ -e "$$out" ]; do out=runs/$(RUN_NAME)/training-$$n.ipynb; n=$$((n + 1)); done; \
	echo "executed notebook: $$out"; \
	$(PY) -m papermill notebooks/training.ipynb "$$out" \
		-p run_name $(RUN_NAME) -p output_dir runs --cwd . --log-output --no-progress-bar
	@echo "outputs: runs/$(RUN_NAME)/ (config, checkpoints, metrics, figures; a changed form trains in runs/$(RUN_NAME)-2)"

model-check: install
	mkdir -p runs/$(CHECK_NAME)
	$(PY) -m papermill notebooks/model_check.ipynb runs/$(CHECK_NAME)/model_check.ipynb -p run_name $(CHECK_NAME) \
		-p output_dir runs -p task $(TASK) -p model_source $(MODEL) -p level $(LEVEL) --cwd . --log-output --no-progress-bar
	@echo "outputs: runs/$(CHECK_NAME)/ (executed notebook, model_check.json, model_check.png, record.json)"

test: install unit nbval lint

unit: install
	$(PY) -m pytest $(PYTEST_FLAGS) -m "not slow" tests

test-slow: install
	$(PY) -m pytest $(PYTEST_FLAGS) -m slow tests

nbval: install
	rm -rf notebooks/runs
	$(PY) -m pytest $(PYTEST_FLAGS) --nbval-lax notebooks/
	rm -rf notebooks/runs

lint: install
	$(VENV)/bin/lint-imports helpers/pyproject.toml
	$(PY) -m trainbook.lint notebooks/
	$(PY) notebooks/build.py --check

test-colab: install
	PYTHON="$(PYTHON)" TORCH_SPEC="$(TORCH_SPEC)" bash tests/colab_env.sh $(COLAB_VENV)
	TRAINBOOK_COLAB_VENV="$(abspath $(COLAB_VENV))" $(PY) -m pytest $(PYTEST_FLAGS) tests/test_colab.py -k colab_versions

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(COLAB_VENV) runs notebooks/runs .pytest_cache .import_linter_cache helpers/*.egg-info
