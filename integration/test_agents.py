"""Issue 13, signed agents (Web Bot Auth) end to end: Envoy fetches the agent's key directory
from a local server through a cluster; requests signed by the test with its own key (RFC 9421,
Ed25519, as integration/signing.py writes them) are the agent, proven; tampered, expired and
replayed signatures are refused; an unsigned self-declared agent that is refused is told how to
sign (Accept-Signature)."""
import time

from harness import FileServer, echoed, until
from signing import Signer

AGENT = "https://agent.test"
UA = "Mozilla/5.0 (compatible; TestAgent/1.0; +https://agent.test/bot)"
DIRECTORY = ".well-known/http-message-signatures-directory"


def with_agent(policy):
    policy["crawlers"] = {"definitions": [{
        "name": "testagent", "operator": "Example", "purpose": "agent", "user_agents": ["testagent/"],
        "ranges": ["192.0.2.0/28"], "action": "allow",
        "signature_agent": {"url": AGENT, "cluster": "feeds", "refresh_seconds": 1}}]}
    return policy


def signed_get(e, signer, authority="app.test", created=None, expires=None, nonce=None, ip="203.0.113.50"):
    now = int(time.time())
    created = now - 5 if created is None else created
    expires = now + 55 if expires is None else expires
    nonce = nonce or f"n-{time.time_ns()}"
    headers = signer.sign(authority, AGENT, created, expires, nonce)["headers"]
    return e.get("/products/1", headers={"user-agent": UA, "accept": "*/*", "x-forwarded-for": ip, **headers}), headers


def test_a_signed_agent_is_proven_and_bad_signatures_are_refused(envoy_with, example_policy):
    signer = Signer.from_seed(bytes(range(32)))
    with FileServer() as directory:
        directory.put(DIRECTORY, signer.directory_json())
        e = envoy_with(with_agent(example_policy), feeds=directory.port, concurrency=2)
        # Each worker loads the fetched directory on its own tick: until both have it (a run of
        # answers on new connections, which the kernel spreads over both workers).
        assert until(lambda: all(signed_get(e, signer)[0][0] == 200 for _ in range(6))), \
            "the directory is fetched and the signature holds"
        (status, _, body), headers = signed_get(e, signer)
        assert status == 200, body
        seen = echoed(body)
        assert seen["x-botgate-bot"] == ['testagent;operator="Example";purpose=agent;verified=signature']
        assert seen["x-botgate-reasons"] == ["verified_signed_agent"]

        # The same signed headers again, on new connections (either worker): a replay.
        replays = [e.get("/products/1", headers={"user-agent": UA, "accept": "*/*", "x-forwarded-for": "203.0.113.50",
                                                 **headers}) for _ in range(4)]
        assert all(s == 403 and b"signature_invalid" in b for s, _, b in replays), [s for s, _, _ in replays]

        (status, _, body), _ = signed_get(e, signer, authority="elsewhere.test")
        assert status == 403 and b"signature_invalid" in body, "a signature lifted from another host"
        now = int(time.time())
        (status, _, body), _ = signed_get(e, signer, created=now - 600, expires=now - 300)
        assert status == 403 and b"crawler_impersonation" in body, \
            "an expired signature proves nothing: the user agent's claim is refuted by the agent's ranges"
        forger = Signer.from_seed(bytes([7] * 32))
        (status, _, body), _ = signed_get(e, forger)
        assert status != 200 or b"verified_signed_agent" not in body, "another key is not the agent's"
        assert e.wait_metric("botgate_signed_requests_total", lambda v: v >= 2, crawler="testagent",
                             result="valid") >= 2
        assert e.metric("botgate_feed_entries", feed="testagent") == 1


def test_an_unsigned_self_declared_agent_refused_is_asked_to_sign(envoy_with, example_policy):
    with FileServer() as directory:
        directory.put(DIRECTORY, Signer.from_seed(bytes(range(32))).directory_json())
        e = envoy_with(with_agent(example_policy), feeds=directory.port)
        status, headers, body = e.get("/", headers={"user-agent": UA, "accept": "*/*", "x-forwarded-for": "203.0.113.9"})
        assert status == 403 and b"crawler_impersonation" in body, (status, body)
        accept = headers.get("accept-signature", [""])[0]
        assert 'tag="web-bot-auth"' in accept and '"@authority"' in accept, headers
