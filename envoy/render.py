#!/usr/bin/env python3
"""Renders envoy/envoy.template.yaml with a policy and ports.

    python3 envoy/render.py [--policy FILE] [--listen 10000] [--admin 9901] [--upstream 18080]
                            [--wasm PATH] [--access-log PATH] [--per-route] [--doh 8053] [--feeds 8054] [--fleet 7379]
                            [--tls-cert PEM --tls-key PEM] > envoy.yaml

With --tls-cert/--tls-key the listener also accepts TLS (HTTP/2 and HTTP/1.1) on the same port,
and botgate sees each TLS client's JA4 fingerprint (its tls_fingerprint signal).
"""
import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_WASM = "target/wasm32-wasip1/release/botgate.wasm"


DEFAULT_ROUTES = """\
              - name: default
                match: {prefix: "/"}
                route: {cluster: upstream, timeout: 10s}"""

# Per-route rollout, three ways: Envoy's FilterConfig turns the filter off on /healthz; route
# metadata selects the policy's "strict" profile on /checkout; the route name "internal" is
# "disabled" in the policy's `routes`.
PER_ROUTE_ROUTES = """\
              - name: healthz
                match: {prefix: "/healthz"}
                route: {cluster: upstream}
                typed_per_filter_config:
                  botgate:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
                # botgate does not run here: the upstream must not see a client's own verdict.
                request_headers_to_remove: [x-botgate-score, x-botgate-tier, x-botgate-reasons,
                                            x-botgate-verdict, x-botgate-session, x-botgate-binding]
              - name: checkout
                match: {prefix: "/checkout"}
                route: {cluster: upstream}
                metadata: {filter_metadata: {botgate: {profile: strict}}}
              - name: internal
                match: {prefix: "/internal/"}
                route: {cluster: upstream}
""" + DEFAULT_ROUTES

PER_ROUTE_POLICY = {
    "profiles": {"strict": {"mode": "enforce", "bot_detector": {"action": "block", "applies_to": [],
                                                                 "max_requests_per_window": 3}}},
    "routes": {"internal": "disabled"},
}


# Envoy answers by itself: load tests measure Envoy and botgate, not an upstream.
DIRECT_RESPONSE_ROUTES = """\
              - name: default
                match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "ok"}}"""


# A second filter chain for TLS connections, with the same HTTP filters (the YAML anchor `http`).
TLS_CHAIN = """\
    - filter_chain_match: {transport_protocol: tls}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: %s}
              private_key: {filename: %s}
      filters: *http"""


def render(policy, listen=10000, admin=9901, upstream=18080, wasm=DEFAULT_WASM,
           access_log="/dev/stdout", template=None, per_route=False, routes=None, tls=None, doh=8053,
           feeds=8054, fleet=7379):
    """`tls`: (certificate chain, private key) PEM paths to accept TLS on the listener too."""
    """`policy` is a dict or JSON text; it is embedded as the plugin configuration."""
    if per_route:
        policy = {**(json.loads(policy) if isinstance(policy, str) else policy), **PER_ROUTE_POLICY}
    text = policy if isinstance(policy, str) else json.dumps(policy, indent=2)
    indented = "\n".join(" " * 20 + line for line in text.strip().splitlines())
    tpl = (template or (HERE / "envoy.template.yaml")).read_text()
    for key, value in {
        "LISTEN_PORT": listen, "ADMIN_PORT": admin, "UPSTREAM_PORT": upstream, "DOH_PORT": doh, "FEEDS_PORT": feeds, "FLEET_PORT": fleet,
        "WASM": wasm, "ACCESS_LOG": access_log, "POLICY": indented,
        "ROUTES": routes or (PER_ROUTE_ROUTES if per_route else DEFAULT_ROUTES),
        "TLS_CHAIN": TLS_CHAIN % tuple(tls) if tls else "",
    }.items():
        tpl = tpl.replace("{{%s}}" % key, str(value))
    return tpl


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=str(HERE / "policy.example.json"))
    ap.add_argument("--listen", type=int, default=10000)
    ap.add_argument("--admin", type=int, default=9901)
    ap.add_argument("--upstream", type=int, default=18080)
    ap.add_argument("--wasm", default=DEFAULT_WASM)
    ap.add_argument("--access-log", default="/dev/stdout")
    ap.add_argument("--doh", type=int, default=8053, help="port of the local DNS-over-HTTPS resolver (h2c)")
    ap.add_argument("--feeds", type=int, default=8054, help="port of the local server of the policy's feeds")
    ap.add_argument("--fleet", type=int, default=7379, help="port of the fleet's webdis (Redis's HTTP front end)")
    ap.add_argument("--per-route", action="store_true", help="the per-route rollout showcase")
    ap.add_argument("--tls-cert", help="PEM certificate chain: accept TLS on the listener too")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    a = ap.parse_args()
    policy = pathlib.Path(a.policy).read_text()
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    tls = (a.tls_cert, a.tls_key) if a.tls_cert else None
    sys.stdout.write(render(policy, a.listen, a.admin, a.upstream, a.wasm, a.access_log, per_route=a.per_route,
                            tls=tls, doh=a.doh, feeds=a.feeds, fleet=a.fleet))


if __name__ == "__main__":
    main()
