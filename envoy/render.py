#!/usr/bin/env python3
"""Renders envoy/envoy.template.yaml with a policy and ports.

    python3 envoy/render.py [--policy FILE] [--listen 10000] [--admin 9901] [--upstream 18080]
                            [--wasm PATH] [--access-log PATH] > envoy.yaml
"""
import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_WASM = "target/wasm32-wasip1/release/botgate.wasm"


def render(policy, listen=10000, admin=9901, upstream=18080, wasm=DEFAULT_WASM,
           access_log="/dev/stdout", template=None):
    """`policy` is a dict or JSON text; it is embedded as the plugin configuration."""
    text = policy if isinstance(policy, str) else json.dumps(policy, indent=2)
    indented = "\n".join(" " * 20 + line for line in text.strip().splitlines())
    tpl = (template or (HERE / "envoy.template.yaml")).read_text()
    for key, value in {
        "LISTEN_PORT": listen, "ADMIN_PORT": admin, "UPSTREAM_PORT": upstream,
        "WASM": wasm, "ACCESS_LOG": access_log, "POLICY": indented,
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
    a = ap.parse_args()
    policy = pathlib.Path(a.policy).read_text()
    sys.stdout.write(render(policy, a.listen, a.admin, a.upstream, a.wasm, a.access_log))


if __name__ == "__main__":
    main()
