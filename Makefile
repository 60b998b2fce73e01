# botgate: build, test, demo, bench.
VENV          := .venv
PY            := $(VENV)/bin/python
ENVOY         := $(VENV)/bin/envoy
WASM          := target/wasm32-wasip1/release/botgate.wasm
CARGO         ?= cargo

.PHONY: all wasm cli test unit integration lint demo bench fuzz-smoke envoy-config deps system-deps clean
APT_PACKAGES  := wrk chromium chromium-driver unbound crowdsec prometheus
SUDO          := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

all: wasm cli

## Toolchain and Envoy, installed into the project (idempotent).
deps: $(VENV)/.installed
	@rustup target list --installed 2>/dev/null | grep -q wasm32-wasip1 || rustup target add wasm32-wasip1

## Debian packages the tests drive: the load generator and the browser.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  [ -e /etc/crowdsec/online_api_credentials.yaml ] || { $(SUDO) mkdir -p /etc/crowdsec && \
	    echo "# offline: no Central API (README.Debian)" | $(SUDO) tee /etc/crowdsec/online_api_credentials.yaml >/dev/null; }; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; fi

# Envoy (pinned, from PyPI) and the test tools, in a project venv.
$(VENV)/.installed: integration/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r integration/requirements.txt
	@$(ENVOY) --version | head -1
	@touch $@

wasm: deps
	$(CARGO) build --lib --release --target wasm32-wasip1
	python3 tools/trim_exports.py $(WASM)
	@ls -l $(WASM)

cli:
	$(CARGO) build --release --bin botgate

## Every test: engine unit and scenario tests natively, then real Envoy end to end.
test: deps system-deps lint unit integration

unit:
	$(CARGO) test --all-targets

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --lib --target wasm32-wasip1 -- -D warnings

integration: wasm cli
	$(PY) -m pytest -q integration

## Envoy + botgate + a demo upstream on 127.0.0.1 (Ctrl-C stops all three).
demo: wasm cli
	$(PY) integration/demo.py

## Paired Envoy benchmark and engine micro-benchmarks (BENCHMARKS.md); then the native engine
## benchmark of the decision plane (threat-intel lookups, a whole request) and the simulator.
bench: wasm cli
	bench/run.sh
	$(CARGO) bench --bench engine
	target/release/botgate simulate envoy/policy.example.json
	$(PY) bench/browser_solve.py

fuzz-smoke:
	fuzz/smoke.sh

envoy-config:
	python3 envoy/render.py > envoy/envoy.yaml
	python3 envoy/render.py --per-route > envoy/envoy.per-route.yaml

clean:
	$(CARGO) clean
