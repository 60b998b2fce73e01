#!/usr/bin/env python3
"""Pin the botgate OCI image by digest in deployment manifests.

Every `oci://registry.example.com/botgate@sha256:<64 hex>` and every
`oci://registry.example.com/botgate:<tag>` (or `:<tag>@sha256:…`) in the given files is rewritten
to `oci://registry.example.com/botgate@<digest>`, the digest `make oci` wrote to target/oci/digest
(or `--digest`). Each change is printed as `file:line: old -> new`; files are written only if
something changed.

`--check` rewrites nothing: it exits 1 if any file names another digest or only a tag (not
pinned), 0 if every reference is pinned to this digest. `make oci` runs it for reporting only.

How a release pins the image:

    make oci && python3 envoy/pin_digest.py envoy/istio/*.yaml
    skopeo copy --preserve-digests oci:target/oci/botgate \\
        docker://registry.example.com/botgate@$(cat target/oci/digest)
    # optionally a tag as well (same manifest, same digest):
    skopeo copy --preserve-digests oci:target/oci/botgate docker://registry.example.com/botgate:0.1.0

then commit the pinned manifests. The build is reproducible (same wasm, same digest), so anyone can
rebuild from the tagged source and confirm the pinned digest.
"""

import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DIGEST_FILE = ROOT / "target" / "oci" / "digest"
IMAGE = "oci://registry.example.com/botgate"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def reference_re(image):
    return re.compile(
        re.escape(image)
        + r"(?:(?P<tag>:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})(?P<d1>@sha256:[0-9a-f]{64})?"
        + r"|(?P<d2>@sha256:[0-9a-f]{64}))"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=pathlib.Path)
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if a file names another digest or only a tag")
    ap.add_argument("--digest", help=f"sha256:<64 hex> (default: {DIGEST_FILE.relative_to(ROOT)})")
    ap.add_argument("--image", default=IMAGE, help=f"image reference prefix (default: {IMAGE})")
    args = ap.parse_args(argv)

    if args.digest is None:
        try:
            args.digest = DIGEST_FILE.read_text().strip()
        except OSError as e:
            sys.exit(f"pin_digest: {e}; run `make oci` first or pass --digest")
    if not DIGEST_RE.fullmatch(args.digest):
        sys.exit(f"pin_digest: not a sha256 digest: {args.digest!r}")

    pinned = f"{args.image}@{args.digest}"
    pattern = reference_re(args.image)
    stale = found = 0
    for path in args.files:
        try:
            text = path.read_text()
        except OSError as e:
            print(f"pin_digest: skipped {path}: {e.strerror}", file=sys.stderr)
            continue
        lines = text.splitlines(keepends=True)
        for n, line in enumerate(lines, 1):
            for m in pattern.finditer(line):
                found += 1
                if m.group(0) == pinned:
                    continue
                stale += 1
                verb = "names" if args.check else "pinned"
                print(f"{path}:{n}: {verb} {m.group(0)}" + ("" if args.check else f" -> {pinned}"))
            lines[n - 1] = pattern.sub(pinned, line)
        new = "".join(lines)
        if not args.check and new != text:
            path.write_text(new)

    if args.check:
        if stale:
            print(f"pin_digest: {stale} of {found} reference(s) not pinned to {args.digest}")
            return 1
        print(f"pin_digest: {found} reference(s), all pinned to {args.digest}")
        return 0
    print(f"pin_digest: {stale} of {found} reference(s) rewritten to {args.digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
