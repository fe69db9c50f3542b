PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest docs bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile -c constraints.txt -e ".[all]"
	@# the bytecode, compiled on every core (pip compiles one file at a time); as with pip, a
	@# file that does not compile (a newer Python's syntax in a test file) is left as it is
	$(BIN)/python -c "import compileall, sysconfig; \
	compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=2, workers=0)"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/crossentropy demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

# The checks run side by side (pytest on two workers, mypy and the docs build beside them); each
# target's output is printed whole when it ends.
test: $(STAMP)
	$(MAKE) --no-print-directory -j4 --output-sync=target lint typecheck docs pytest

bench: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python benchmarks/run.py --repeat 20

clean:
	rm -rf $(VENV)
