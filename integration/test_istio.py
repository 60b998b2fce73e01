"""Issue 16: the Istio and Envoy Gateway manifests do what they say, checked without a cluster.
Each resource validates against its CRD's OpenAPI schema (envoy/schemas/), each plugin
configuration is a valid policy that tells botgate the mesh cannot hold headers, keys come from a
Secret, images are pinned by digest; and the Envoy configuration the gateway manifests imply
(the WasmPlugin's settings, the EnvoyFilters' stats tags and JA4 filter, the VirtualService's
route names) runs in real Envoy: a body request is answered, checkout runs the strict profile,
healthz runs without botgate, and the metrics carry their labels."""
import copy
import json
import re
import subprocess
import time
import http.client

import pytest

from harness import BOTGATE, ROOT, WASM, Envoy, free_port

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")
import render  # noqa: E402  (harness put envoy/ on the path)

ISTIO = ROOT / "envoy" / "istio"
GATEWAY = ROOT / "envoy" / "gateway"
SCHEMAS = {json.loads(p.read_text())["kind"]: json.loads(p.read_text()) for p in (ROOT / "envoy" / "schemas").glob("*.json")}
DIGEST = re.compile(r"botgate@sha256:[0-9a-f]{64}$")


def docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests():
    return [(p.name, d) for p in sorted([*ISTIO.glob("*.yaml"), *GATEWAY.glob("*.yaml")]) for d in docs(p) if "kind" in d]


def schema_errors(doc):
    s = SCHEMAS[doc["kind"]]
    assert doc["apiVersion"] == f'{s["group"]}/{s["version"]}', doc["apiVersion"]
    return [e.message for e in jsonschema.Draft7Validator(s["openAPIV3Schema"]).iter_errors(doc)]


def lint(policy, tmp_path):
    f = tmp_path / "policy.json"
    f.write_text(json.dumps(policy))
    return subprocess.run([str(BOTGATE), "lint", str(f)], capture_output=True, text=True)


def test_every_resource_validates_against_its_crd_schema():
    checked = [(name, d["kind"]) for name, d in manifests() if d["kind"] in SCHEMAS]
    assert {k for _, k in checked} == {"WasmPlugin", "EnvoyFilter", "EnvoyExtensionPolicy"}, checked
    for name, d in manifests():
        if d["kind"] in SCHEMAS:
            assert schema_errors(d) == [], (name, d["metadata"]["name"])
    # The validator is live: a phase Istio does not know and a stray field are refused.
    plugin = copy.deepcopy(next(d for _, d in manifests() if d["kind"] == "WasmPlugin"))
    plugin["spec"]["phase"] = "EARLY"
    plugin["spec"]["failStrategy"] = "FAIL_SOMETIMES"
    assert len(schema_errors(plugin)) == 2


def test_plugins_fail_safe_are_pinned_by_digest_and_tell_botgate_the_mesh_cannot_hold_headers(tmp_path):
    plugins = [(n, d) for n, d in manifests() if d["kind"] in ("WasmPlugin", "EnvoyExtensionPolicy")]
    assert len(plugins) == 4
    for name, d in plugins:
        if d["kind"] == "WasmPlugin":
            config, url = d["spec"]["pluginConfig"], d["spec"]["url"]
            env = {e["name"] for e in d["spec"]["vmConfig"]["env"] if e.get("valueFrom") == "HOST"}
            # FAIL_OPEN would bypass the plugin on a trap: never for a security control.
            assert d["spec"]["failStrategy"] in ("FAIL_RELOAD", "FAIL_CLOSE"), name
            assert d["spec"]["phase"] == "AUTHN"
        else:
            (wasm,) = d["spec"]["wasm"]
            config, url, env = wasm["config"], wasm["code"]["image"]["url"], set(wasm["env"]["hostKeys"])
            assert wasm["failOpen"] is False
        assert DIGEST.search(url), (name, url)
        assert config["envoy"] == {"allow_on_headers_stop_iteration": False}, name
        r = lint(config, tmp_path)
        assert r.returncode == 0, (name, r.stdout)
        named = set(re.findall(r'"secret_env": "(\w+)"', json.dumps(config)))
        assert named and named <= env, (name, named, env)
    # One image for all (`make oci && envoy/pin_digest.py FILES` moves them together).
    digests = {m for _, d in plugins for m in re.findall(r"sha256:[0-9a-f]{64}", json.dumps(d))}
    assert len(digests) == 1, digests


def test_the_gateway_keys_come_from_the_secret_and_routes_name_the_virtual_service():
    gateway = docs(ISTIO / "gateway.yaml")
    assert not [d for d in gateway if d["kind"] == "Secret"], "re-applying the manifests must not reset the keys"
    secret = next(d for d in docs(ISTIO / "secret.example.yaml") if d["kind"] == "Secret")
    plugin = next(d for d in gateway if d["kind"] == "WasmPlugin")
    patch = yaml.safe_load((ISTIO / "gateway-deployment-patch.yaml").read_text())
    (proxy,) = patch["spec"]["template"]["spec"]["containers"]
    assert proxy["name"] == "istio-proxy"
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in proxy["env"]}
    for e in plugin["spec"]["vmConfig"]["env"]:
        ref = from_secret[e["name"]]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"], e
    assert "wasmcustom.botgate_" in patch["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"]
    service = next(d for d in gateway if d["kind"] == "VirtualService")
    names = {r["name"] for r in service["spec"]["http"]}
    config = plugin["spec"]["pluginConfig"]
    assert set(config["routes"]) <= names and set(config["routes"].values()) - {"disabled"} <= set(config["profiles"])
    assert "disabled" in config["routes"].values() and len(config["profiles"]) == 1, "one route on a profile, one off"


def mesh_envoy_config(port, admin, upstream, access_log):
    """The Envoy configuration the gateway manifests imply, on loopback: Envoy's own config with
    what Istio changes (the plugin's name, failure policy and unset flag, the EnvoyFilters' stats
    config and JA4 filter, the VirtualService's routes) and the pluginConfig as policy."""
    gateway = docs(ISTIO / "gateway.yaml")
    plugin = next(d for d in gateway if d["kind"] == "WasmPlugin")
    stats = next(d for d in gateway if d["kind"] == "EnvoyFilter" and d["metadata"]["name"] == "botgate-stats")
    ja4 = next(d for d in gateway if d["kind"] == "EnvoyFilter" and d["metadata"]["name"] == "botgate-ja4")
    service = next(d for d in gateway if d["kind"] == "VirtualService")
    routes = "\n".join(
        f'              - name: {r["name"]}\n'
        f'                match: {{prefix: "{r.get("match", [{"uri": {"prefix": "/"}}])[0]["uri"]["prefix"]}"}}\n'
        f'                route: {{cluster: upstream}}' for r in service["spec"]["http"])
    text = render.render(plugin["spec"]["pluginConfig"], port, admin, upstream, str(WASM), str(access_log),
                         routes=routes)
    config = yaml.safe_load(text)
    config["stats_config"] = stats["spec"]["configPatches"][0]["patch"]["value"]["stats_config"]
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    header_filter = next(p for p in ja4["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER")["patch"]["value"]
    filters[:] = [header_filter] + [f for f in filters if f["name"] != "tls-fingerprint"]
    wasm = next(f for f in filters if f["name"] == "botgate")
    wasm["name"] = f'{plugin["metadata"]["namespace"]}.{plugin["metadata"]["name"]}'
    wasm["typed_config"]["config"].pop("allow_on_headers_stop_iteration")
    wasm["typed_config"]["config"]["failure_policy"] = plugin["spec"]["failStrategy"]
    return yaml.safe_dump(config, sort_keys=False)


def test_the_configuration_the_gateway_manifests_imply_runs_in_real_envoy(upstream, tmp_path):
    port, admin, log = free_port(), free_port(), tmp_path / "access.log"
    template = tmp_path / "mesh.yaml"
    template.write_text(mesh_envoy_config(port, admin, upstream.port, log))
    e = Envoy("{}", upstream.port, template=template, port=port, admin=admin, access_log=log)
    try:
        client = {"user-agent": "acme-sync/2.1", "accept": "application/json", "accept-language": "en"}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        started = time.time()
        c.request("POST", "/v1/orders", body=b'{"item": "sku-1"}', headers={**client, "content-type": "application/json"})
        assert c.getresponse().status == 200 and time.time() - started < 1.0
        c.close()
        assert e.get("/checkout/cart", headers=client)[0] in (200, 401, 403)
        assert e.get("/healthz", headers=client)[0] == 200
        entries = {x["path"]: x["botgate"] for x in e.access_entries(want=3)}
        assert entries["/checkout/cart"]["profile"] == "strict", entries
        assert entries["/healthz"] is None, "botgate is off on the healthz route"
        assert "profile" not in entries["/v1/orders"]
        assert e.wait_metric("botgate_requests_total", lambda v: v >= 1, outcome="pass") >= 1, "labels from the stats tags"
        assert 'le="300"' in e.stats() and 'le="750"' in e.stats()
    finally:
        e.close()


def test_no_plugin_trusts_a_whole_private_range_for_forwarded_addresses():
    """Istio's gateway appends its peer to x-forwarded-for: trusting a pod or node range would make
    everyone behind one load balancer a single client (or, in the mesh, let any workload pick its
    address). Each plugin trusts nobody, or a narrow list."""
    import ipaddress
    for name, d in manifests():
        if d["kind"] not in ("WasmPlugin", "EnvoyExtensionPolicy"):
            continue
        configs = [d["spec"]["pluginConfig"]] if d["kind"] == "WasmPlugin" else [w["config"] for w in d["spec"]["wasm"]]
        for config in configs:
            for cidr in config["ip_rate_limit"].get("trusted_proxies", []):
                assert ipaddress.ip_network(cidr).num_addresses <= 256, (name, cidr)
