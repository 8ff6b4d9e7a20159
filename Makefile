# Two commands for a newcomer: `make demo` (set up + complete a sample) and `make test`.
# Both are idempotent: a second run reuses .venv/ and pip's cached llama-cpp-python wheel.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Portable CPU flags: a native build dies with SIGILL where AMX is advertised but
# unusable. AVX-512 is added only where this CPU has it. A user's CMAKE_ARGS wins
# (e.g. CMAKE_ARGS="-DGGML_CUDA=on" make demo).
AVX512 := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo "-DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON")
CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON $(AVX512)
export CMAKE_ARGS

# PROFILE=quality (or both, for bench) also installs the 1.5B model's parts (1.1 GB);
# PROFILE=fast|quality|auto picks the model profile (default: the setting, else auto).
PROFILE ?=
QUALITY_STAMP := $(VENV)/.installed-quality
NEEDS_QUALITY := $(if $(filter quality both,$(PROFILE)),$(QUALITY_STAMP))
RUN_PROFILE := $(if $(filter auto fast quality,$(PROFILE)),COPILOT_SERVER_PROFILE=$(PROFILE))

.PHONY: demo test test-vscode install install-quality lint bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[model,test,bench]'
	touch $(STAMP)

install: $(STAMP)

$(QUALITY_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[quality]'
	touch $(QUALITY_STAMP)

install-quality: $(QUALITY_STAMP)

demo: install $(NEEDS_QUALITY)
	$(RUN_PROFILE) $(BIN)/copilot-server model
	$(RUN_PROFILE) $(BIN)/copilot-server demo

test: install
	$(BIN)/python -m pytest -q
	@if [ -f editors/vscode/package.json ]; then $(MAKE) test-vscode; fi

# The VS Code extension: tsc, unit tests against a vscode stub, and a protocol test
# against the real server (uses .venv/bin/copilot-server).
test-vscode: install
	cd editors/vscode && npm ci --no-audit --no-fund && npm test

lint: install
	$(BIN)/ruff check copilot_server tests

bench-quick: install $(NEEDS_QUALITY)
	$(BIN)/copilot-server bench --quick $(if $(PROFILE),--profile $(PROFILE))

bench: install $(NEEDS_QUALITY)
	$(BIN)/copilot-server bench $(if $(PROFILE),--profile $(PROFILE))

clean:
	rm -rf $(VENV) build *.egg-info
