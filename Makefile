# botgate: build, test, demo, bench.
VENV          := .venv
PY            := $(VENV)/bin/python
ENVOY         := $(VENV)/bin/envoy
WASM          := target/wasm32-wasip1/release/botgate.wasm
CARGO         ?= cargo

.PHONY: all wasm cli test unit integration lint demo fleet bench fuzz-smoke envoy-config deps system-deps clean oci
APT_PACKAGES  := wrk chromium chromium-driver unbound crowdsec prometheus buildah skopeo docker-compose redis-server webdis
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

## The fleet on loopback: Redis behind webdis, two Envoys with botgate on 10001 and 10002 sharing
## fleet-wide state, the demo upstream (Ctrl-C stops all of it).
fleet: wasm cli system-deps
	$(PY) integration/fleet_demo.py

## Paired Envoy benchmark and engine micro-benchmarks (BENCHMARKS.md); then the native engine
## benchmark of the decision plane (threat-intel lookups, a whole request) and the simulator.
bench: wasm cli
	bench/run.sh
	$(CARGO) bench --bench engine
	target/release/botgate simulate envoy/policy.example.json
	$(PY) bench/browser_solve.py

fuzz-smoke:
	fuzz/smoke.sh

## The OCI image Istio pulls (one gzip layer holding plugin.wasm; envoy/Dockerfile.plugin makes the
## same with docker), built without a daemon into the OCI layout target/oci/botgate. Reproducible:
## the same wasm gives the same manifest digest (written to target/oci/digest).
OCI_DIR       := target/oci
OCI_IMAGE     := $(OCI_DIR)/botgate
OCI_TAG       := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
BUILDAH       := buildah --root $(OCI_DIR)/storage --runroot $(OCI_DIR)/run --storage-driver vfs

oci: wasm
	@command -v buildah >/dev/null && command -v skopeo >/dev/null || \
	  { echo "make oci needs buildah and skopeo (make system-deps)" >&2; exit 1; }
	rm -rf $(OCI_IMAGE) $(OCI_DIR)/storage $(OCI_DIR)/run $(OCI_DIR)/digest
	c=$$($(BUILDAH) from scratch) && \
	  $(BUILDAH) config --arch amd64 --os linux $$c && \
	  $(BUILDAH) copy --quiet --chmod 0644 --chown 0:0 $$c $(WASM) /plugin.wasm && \
	  $(BUILDAH) commit --quiet --rm --format oci --disable-compression=false --timestamp 0 \
	    --omit-history $$c oci:$(OCI_IMAGE):$(OCI_TAG) >/dev/null
	rm -rf $(OCI_DIR)/storage $(OCI_DIR)/run
	skopeo inspect --format '{{.Digest}}' oci:$(OCI_IMAGE):$(OCI_TAG) > $(OCI_DIR)/digest
	@python3 envoy/pin_digest.py --check --digest "$$(cat $(OCI_DIR)/digest)" \
	  envoy/istio/*.yaml envoy/gateway/*.yaml 2>/dev/null || true
	@echo "oci:$(OCI_IMAGE):$(OCI_TAG) $$(cat $(OCI_DIR)/digest)"

envoy-config:
	python3 envoy/render.py > envoy/envoy.yaml
	python3 envoy/render.py --per-route > envoy/envoy.per-route.yaml

clean:
	$(CARGO) clean
