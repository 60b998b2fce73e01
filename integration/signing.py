#!/usr/bin/env python3
"""Sign a request the way botgate's Web Bot Auth verifier (src/formats/signature.rs) expects.

RFC 9421 HTTP Message Signatures as profiled by draft-meunier-webbotauth-httpsig-protocol:
Ed25519, tag="web-bot-auth", created/expires, keyid = RFC 7638 JWK thumbprint, covering
@authority and the Signature-Agent dictionary member keyed by the signature label.

As a module:
    from sign import Signer
    s = Signer.from_seed(bytes(range(32)))
    headers = s.sign("example.com", "https://agent.test", created=1735689600,
                     expires=1735689900, nonce="abc")
    s.directory_json()   # body to serve at /.well-known/http-message-signatures-directory

As a script (prints JSON: headers, keyid, directory, base):
    python3 sign.py --authority example.com --agent https://agent.test \\
        --created 1735689600 --expires 1735689900 --nonce abc [--seed-hex 00..1f] \\
        [--label sig1] [--legacy] [--component @method --component @path] \\
        [--method GET --path /x?y=1 --scheme https]

Needs the `cryptography` package.
"""

import argparse
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DEFAULT_SEED = bytes(range(32))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sf_string(value: str) -> str:
    """An RFC 8941 sf-string (printable ASCII only)."""
    if any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise ValueError(f"not an sf-string: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jwk_thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 JWK (RFC 8037 A.3)."""
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"%s"}' % x
    return b64url(hashlib.sha256(canonical.encode()).digest())


class Signer:
    def __init__(self, key: Ed25519PrivateKey):
        self.key = key
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.x = b64url(raw)
        self.keyid = jwk_thumbprint(self.x)

    @classmethod
    def from_seed(cls, seed: bytes = DEFAULT_SEED) -> "Signer":
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_jwk_d(cls, d: str) -> "Signer":
        return cls.from_seed(base64.urlsafe_b64decode(d + "=" * (-len(d) % 4)))

    def jwk(self) -> dict:
        return {"kty": "OKP", "crv": "Ed25519", "kid": self.keyid, "x": self.x, "use": "sig"}

    def directory_json(self) -> str:
        return json.dumps({"keys": [self.jwk()]}, separators=(",", ":"))

    def sign(
        self,
        authority: str,
        agent: str | None,
        created: int,
        expires: int,
        nonce: str | None = None,
        label: str = "sig1",
        legacy: bool = False,
        extra_components: tuple[str, ...] = (),
        method: str = "GET",
        path: str = "/",
        scheme: str = "https",
        headers: dict[str, str] | None = None,
    ) -> dict:
        """Returns {"headers": {...}, "base": str}. `authority` is the @authority value as the
        verifier will see it (lower case, no default port). `headers` are extra request fields
        that may be covered by `extra_components` (lower-case names)."""
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        lines, idents = [], []
        out = {}

        def cover(ident: str, value: str):
            idents.append(ident)
            lines.append(f"{ident}: {value}")

        cover('"@authority"', authority.lower())
        if agent is not None:
            if legacy:
                member = sf_string(agent)
                out["Signature-Agent"] = member
                cover('"signature-agent"', member)
            else:
                member = sf_string(agent)
                out["Signature-Agent"] = f"{label}={member}"
                cover(f'"signature-agent";key={sf_string(label)}', member)
        pth, _, query = path.partition("?")
        for comp in extra_components:
            derived = {
                "@method": method,
                "@path": pth or "/",
                "@query": "?" + query,
                "@scheme": scheme.lower(),
                "@target-uri": f"{scheme.lower()}://{authority.lower()}{path}",
            }
            if comp in derived:
                cover(sf_string(comp), derived[comp])
            else:
                cover(sf_string(comp), headers[comp].strip())

        # The draft's test vectors' order, so they reproduce byte for byte.
        params = f';created={created};keyid={sf_string(self.keyid)};alg="ed25519";expires={expires}'
        if nonce is not None:
            params += f";nonce={sf_string(nonce)}"
        params += ';tag="web-bot-auth"'
        sig_params = "(" + " ".join(idents) + ")" + params
        lines.append(f'"@signature-params": {sig_params}')
        base = "\n".join(lines)
        signature = base64.b64encode(self.key.sign(base.encode())).decode()
        out["Signature-Input"] = f"{label}={sig_params}"
        out["Signature"] = f"{label}=:{signature}:"
        return {"headers": out, "base": base}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-hex", help="32-byte Ed25519 seed, hex (default 000102..1f)")
    ap.add_argument("--jwk-d", help="private key as a JWK 'd' (base64url)")
    ap.add_argument("--authority", required=True)
    ap.add_argument("--agent", help="Signature-Agent URL (omit for none)")
    ap.add_argument("--created", type=int, required=True)
    ap.add_argument("--expires", type=int, required=True)
    ap.add_argument("--nonce")
    ap.add_argument("--label", default="sig1")
    ap.add_argument("--legacy", action="store_true", help="Signature-Agent as a bare sf-string")
    ap.add_argument("--component", action="append", default=[], help="extra covered component")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--path", default="/")
    ap.add_argument("--scheme", default="https")
    ap.add_argument("--header", action="append", default=[], help="name:value for covered fields")
    a = ap.parse_args(argv)
    if a.jwk_d:
        signer = Signer.from_jwk_d(a.jwk_d)
    else:
        signer = Signer.from_seed(bytes.fromhex(a.seed_hex) if a.seed_hex else DEFAULT_SEED)
    extra = dict(h.split(":", 1) for h in a.header)
    signed = signer.sign(
        a.authority, a.agent, a.created, a.expires, a.nonce, a.label, a.legacy,
        tuple(a.component), a.method, a.path, a.scheme, extra,
    )
    json.dump(
        {"headers": signed["headers"], "keyid": signer.keyid, "directory": signer.directory_json(),
         "base": signed["base"]},
        sys.stdout, indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
