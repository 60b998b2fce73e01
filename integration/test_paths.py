"""Issue 10 item 5 end to end: paths are matched as the upstream will see them. Every spelling of
`/login` that reaches the upstream's login handler is the example policy's critical `/login`,
both behind the shipped Envoy config (which normalises paths itself) and behind one that does
not (so botgate's own normalisation is what is proven)."""
import json
import pathlib
import tempfile

import pytest

from harness import ROOT

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
# Each reaches a typical upstream's /login handler.
LOGIN_SPELLINGS = ["/login", "/login/", "//login", "/./login", "/%6cogin", "/login;x", "/static/../login",
                   "/%2e/login", "/login?next=/account"]
ENVOY_PATH_SETTINGS = ("normalize_path: true", "merge_slashes: true", "path_with_escaped_slashes_action:")


def raw_paths_template():
    """The shipped template with Envoy's path normalisation taken out."""
    text = (ROOT / "envoy" / "envoy.template.yaml").read_text()
    lines = [line for line in text.splitlines(keepends=True) if not line.strip().startswith(ENVOY_PATH_SETTINGS)]
    assert len(lines) == len(text.splitlines()) - len(ENVOY_PATH_SETTINGS), "the shipped settings moved"
    path = pathlib.Path(tempfile.mkdtemp(prefix="botgate-paths-")) / "envoy.raw-paths.yaml"
    path.write_text("".join(lines))
    return path


@pytest.fixture(params=["envoy_normalises", "envoy_passes_paths_raw"])
def start(request, envoy_with):
    template = None if request.param == "envoy_normalises" else raw_paths_template()
    return lambda policy: envoy_with(policy, template=template)


def ambiguous(ip):
    """A browser's user agent without accept or accept-language: challenged on critical
    endpoints, let through on medium ones."""
    return {"user-agent": CHROME, "x-forwarded-for": ip}


def test_shipped_configs_normalise_paths_in_envoy_too():
    for name in ("envoy.template.yaml", "envoy.yaml", "envoy.per-route.yaml"):
        text = (ROOT / "envoy" / name).read_text()
        assert all(s in text for s in ENVOY_PATH_SETTINGS), name
    assert "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT" in (ROOT / "envoy" / "envoy.yaml").read_text()


def test_every_spelling_of_login_is_challenged_as_login(start, example_policy):
    e = start(example_policy)
    for i, path in enumerate(LOGIN_SPELLINGS):
        status, headers, body = e.post(path, body="user=a", headers=ambiguous(f"203.0.113.{10 + i}"))
        assert status == 401, (path, status, body)
        assert headers["x-botgate-challenge"] == ["proof_of_work"], path
    status, _, body = e.post("/logins", body="user=a", headers=ambiguous("203.0.113.40"))
    assert status == 200, "a medium page lets the same client through"
    logged = [x["botgate"] for x in e.access_entries(want=len(LOGIN_SPELLINGS) + 1)]
    assert [x["endpoint_tier"] for x in logged] == [0] * len(LOGIN_SPELLINGS) + [2]


def test_the_upstream_sees_login_judged_as_login_in_observe_mode(start, example_policy):
    example_policy["mode"] = "observe"
    e = start(example_policy)
    for i, path in enumerate(LOGIN_SPELLINGS):
        status, _, body = e.post(path, body="user=a", headers=ambiguous(f"203.0.113.{50 + i}"))
        assert status == 200, (path, body)
        headers = dict(json.loads(body)["headers"])
        assert headers["x-botgate-verdict"] == "would_challenge", (path, headers)
        assert "challenge_tier" in headers["x-botgate-reasons"], (path, headers)


def test_sequence_rules_and_case_folding_see_through_spellings(start, example_policy):
    example_policy["paths"] = {"case_insensitive": True}
    e = start(example_policy)
    for i, path in enumerate(["/checkout;jsessionid=1", "//checkout/", "/Checkout/confirm"]):
        browser = {"user-agent": CHROME, "accept": "text/html", "accept-language": "en-GB",
                   "x-forwarded-for": f"203.0.113.{80 + i}"}
        status, _, body = e.post(path, body="{}", headers=browser)
        assert status == 403 and "impossible_request_sequence" in json.loads(body)["reasons"], (path, body)
    status, headers, _ = e.post("/LOGIN", body="user=a", headers=ambiguous("203.0.113.90"))
    assert status == 401 and headers["x-botgate-challenge"] == ["proof_of_work"]


def test_the_shipped_config_sends_encoded_slashes_to_the_unescaped_path(envoy_with, example_policy):
    """botgate keeps `%2F` encoded (one segment); an upstream that decodes it would see another
    path, so the shipped Envoy redirects to the unescaped path, which botgate then judges."""
    e = envoy_with(example_policy)
    for path in ("/%2Flogin", "/a%2F..%2Flogin"):
        status, headers, _ = e.post(path, body="user=a", headers=ambiguous("203.0.113.100"))
        assert (status, headers.get("location")) == (307, ["/login"]), path
    status, headers, _ = e.post("/login", body="user=a", headers=ambiguous("203.0.113.100"))
    assert status == 401 and headers["x-botgate-challenge"] == ["proof_of_work"]
