"""`make oci`: the image Istio pulls, checked blob by blob without a registry or a Docker engine.

Istio's fetcher takes the "compat" OCI variant: an OCI manifest whose last layer is a gzip tar
holding plugin.wasm (the single-layer `application/vnd.module.wasm.content.layer.v1+wasm` variant
is rejected, and an uncompressed layer is too).
"""
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile

import pytest

from harness import ROOT, WASM

pytestmark = pytest.mark.skipif(
    not (shutil.which("buildah") and shutil.which("skopeo")),
    reason="buildah and skopeo are not installed (make system-deps installs them)",
)

sys.path.insert(0, str(ROOT / "envoy"))
import pin_digest  # noqa: E402

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
IMAGE = "oci://registry.example.com/botgate"


def make_oci(oci_dir=None):
    """`make oci` without remaking the wasm (built once below), so both builds see the same bytes."""
    cmd = ["make", "-s", "-o", "wasm", "oci"] + ([f"OCI_DIR={oci_dir}"] if oci_dir else [])
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not WASM.exists():
        r = subprocess.run(["make", "wasm"], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    wasm = WASM.read_bytes()
    out = make_oci()
    again = tmp_path_factory.mktemp("oci")
    make_oci(again)
    return {"wasm": wasm, "out": out, "layout": ROOT / "target" / "oci" / "botgate",
            "digest": (ROOT / "target" / "oci" / "digest").read_text().strip(),
            "again": again / "botgate", "again_digest": (again / "digest").read_text().strip()}


def blob(layout, descriptor):
    algo, hexdigest = descriptor["digest"].split(":")
    data = (layout / "blobs" / algo / hexdigest).read_bytes()
    assert algo == "sha256" and hashlib.sha256(data).hexdigest() == hexdigest, descriptor
    assert len(data) == descriptor["size"], descriptor
    return data


def test_layout_manifest_and_layer_are_what_istio_pulls(built):
    layout = built["layout"]
    assert json.loads((layout / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index.get("mediaType", "application/vnd.oci.image.index.v1+json") \
        == "application/vnd.oci.image.index.v1+json"
    assert len(index["manifests"]) == 1
    entry = index["manifests"][0]
    assert entry["mediaType"] == MANIFEST
    assert entry["digest"] == built["digest"], "target/oci/digest is not the manifest's digest"
    assert built["digest"] in built["out"], "make oci does not print the digest"

    manifest = json.loads(blob(layout, entry))
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MANIFEST
    assert manifest["config"]["mediaType"] == CONFIG
    config = json.loads(blob(layout, manifest["config"]))
    assert config["created"] == "1970-01-01T00:00:00Z" and not config.get("history")

    # Exactly one layer (the compat variant's last layer), gzip, holding exactly plugin.wasm.
    assert [layer["mediaType"] for layer in manifest["layers"]] == [LAYER]
    data = blob(layout, manifest["layers"][-1])
    assert data[:2] == b"\x1f\x8b", "layer is not gzip-compressed"
    tar_bytes = gzip.decompress(data)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        assert [m.name.removeprefix("./") for m in members] == ["plugin.wasm"]
        assert members[0].isfile() and members[0].mtime == 0 and members[0].mode & 0o7777 == 0o644
        assert tar.extractfile(members[0]).read() == built["wasm"], "plugin.wasm is not botgate.wasm"

    # Every blob in the layout is one of those three, and each was verified above.
    listed = {entry["digest"], manifest["config"]["digest"], manifest["layers"][0]["digest"]}
    on_disk = {"sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert on_disk == listed


def test_skopeo_agrees_on_the_digest(built):
    r = subprocess.run(["skopeo", "inspect", f"oci:{built['layout']}"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["Digest"] == built["digest"]
    assert len(info["Layers"]) == 1


def test_same_wasm_same_digest(built):
    assert built["again_digest"] == built["digest"]
    a, b = built["layout"], built["again"]
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_pin_digest_rewrites_and_checks(tmp_path, capsys):
    new, old = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    f = tmp_path / "wasmplugin.yaml"
    f.write_text(f"url: {IMAGE}@{old}\n# also {IMAGE}:0.1.0 and {IMAGE}:0.1.0@{old}\nother: oci://x/y:1\n")
    assert pin_digest.main(["--check", "--digest", new, str(f)]) == 1
    assert pin_digest.main(["--digest", new, str(f)]) == 0
    text = f.read_text()
    assert text.count(f"{IMAGE}@{new}") == 3 and old not in text and "oci://x/y:1" in text
    assert f"{f}:1:" in capsys.readouterr().out
    assert pin_digest.main(["--check", "--digest", new, str(f)]) == 0
    assert pin_digest.main(["--check", "--digest", old, str(f)]) == 1
    with pytest.raises(SystemExit):
        pin_digest.main(["--digest", "sha256:short", str(f)])
