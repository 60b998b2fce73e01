#!/usr/bin/env python3
"""Regenerates botgate's list of automation user agents and its test fixtures from pinned
npm packages (standard library only; run from the repository root):

    python3 tools/update_ua_patterns.py            # rewrite the files below
    python3 tools/update_ua_patterns.py --check    # exit 1 if they are out of date

Why a script and not a crate: the filter matches the patterns as plain lower-case literals (one
pass, no regex engine in the Wasm module), so the maintained lists are turned into literals here,
once, and the result is committed and reviewed like code.

Sources (bump a version, run, review the diff, run `cargo test`):
- crawler-user-agents (MIT): {pattern, instances} of crawlers, link checkers, feed readers,
  monitors, previewers and HTTP tools. Every pattern is taken (as literals, see `literals`); the
  instances become the recall fixture.
- isbot (Unlicense): the pattern list `isbot` matches browsers against; its plain-literal
  entries (words such as `crawl`, `headless`, `validator`) catch unknown tools that name what
  they do. Its look-behind and character-class entries are not literals and are left out.
- user-agents (BSD-2-Clause): real browser user agents; a sample is the precision fixture,
  with the legacy and in-app browsers below that it lacks.

Written files:
- src/request/automation.txt      one rule a line: `lit` (anywhere), `^lit` (prefix), `lit$` (suffix)
- tests/fixtures/crawler_user_agents.txt   every instance (`pattern<TAB>user agent`)
- tests/fixtures/browser_user_agents.txt   browser user agents, one a line
"""

import base64
import gzip
import hashlib
import io
import json
import random
import re
import sys
import tarfile
import urllib.request

REGISTRY = "https://registry.npmjs.org"
PINNED = {
    "crawler-user-agents": (
        "1.60.0",
        "sha512-p8hKVsnZl3msolBhGW8s86V0tmmcuBSwhTXkzkegGQzTt0A/ysKDHKzek9fichfqL5qBEgDrR9CuGBU0Y7bDrg==",
    ),
    "isbot": (
        "5.2.3",
        "sha512-e8gGz3VzAuImtTMnB5PqNRRWGAswObTc+X+X5a8PttKT78VSSFec98w9ZwUoy6jJdlvJkVdLiN+WMgA8TewoZg==",
    ),
    "user-agents": (
        "2.1.198",
        "sha512-cpFqEfpW1DW7MZYfJaknK5mNJZBgUwfroY0y1jSVy8Y93T4pmP0wp5HhXTOqZUbUbFppp0fwCyfttG9rsl3vqw==",
    ),
}

# Upstream patterns that would name real people's browsers, with why. Their crawlers' instances
# are listed as known misses in tests/user_agents.rs (NOT_AUTOMATION).
EXCLUDED = {
    "AP3A\\.240617\\.008": "an Android 15 build id: matches every browser on that build (its instance is Instagram's in-app browser)",
}

# Browsers the user-agents sample (recent desktop and mobile traffic) lacks: old IE and Edge,
# Presto Opera and Opera Mini, Firefox ESR and forks, old Android and iOS, in-app browsers,
# TVs, consoles and feature phones.
LEGACY_BROWSERS = [
    "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0; SLCC1; .NET CLR 2.0.50727; Media Center PC 5.0; .NET CLR 3.0.04506)",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; SLCC2; .NET CLR 2.0.50727; .NET CLR 3.5.30729; .NET CLR 3.0.30729; Media Center PC 6.0)",
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; WOW64; Trident/5.0)",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
    "Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; rv:11.0) like Gecko",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; Touch; NOKIA; Lumia 920)",
    "Mozilla/5.0 (Mobile; Windows Phone 8.1; Android 4.0; ARM; Trident/7.0; Touch; rv:11.0; IEMobile/11.0; NOKIA; Lumia 635) like iPhone OS 7_0_3 Mac OS X AppleWebKit/537 (KHTML, like Gecko) Mobile Safari/537",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 6.1; rv:52.0) Gecko/20100101 Firefox/52.0",
    "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.0.10) Gecko/2009042316 Firefox/3.0.10",
    "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:102.0) Gecko/20100101 Goanna/6.5 Firefox/102.0 PaleMoon/33.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/115.0 SeaMonkey/2.53.18",
    "Mozilla/5.0 (Mobile; LYF/F300B/LYF-F300B-001-01-15-130718-i; Android; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5",
    "Mozilla/5.0 (compatible; Konqueror/4.5; Linux) KHTML/4.5.5 (like Gecko)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_6_8) AppleWebKit/534.59.10 (KHTML, like Gecko) Version/5.1.9 Safari/534.59.10",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 9_3_5 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) Version/9.0 Mobile/13G36 Safari/601.1",
    "Mozilla/5.0 (iPhone; U; CPU iPhone OS 4_3_3 like Mac OS X; en-us) AppleWebKit/533.17.9 (KHTML, like Gecko) Version/5.0.2 Mobile/8J2 Safari/6533.18.5",
    "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
    "Opera/9.64 (Windows NT 5.1; U; en) Presto/2.1.1",
    "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54",
    "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16",
    "Mozilla/5.0 (Linux; Android 10; VOG-L29) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.104 Mobile Safari/537.36 OPR/66.2.3445.62346",
    "Mozilla/5.0 (Linux; U; Android 10; en-US; Redmi Note 8 Build/QKQ1.200114.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; U; Android 4.4.2; en-US; HM NOTE 1W Build/KOT49H) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 UCBrowser/11.0.5.850 U3/0.8.0 Mobile Safari/534.30",
    "UCWEB/2.0 (Java; U; MIDP-2.0; en-US; Nokia5130c-2) U2/1.0.0 UCBrowser/9.4.1.377 U2/1.0.0 Mobile",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; SAMSUNG SM-T820) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/9.2 Chrome/67.0.3396.87 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; Pixel 6 Build/SD1A.210817.036; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/94.0.4606.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; U; Android 2.3.6; en-us; Nexus S Build/GRK39F) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
    "Mozilla/5.0 (Linux; U; Android 4.0.4; en-gb; GT-I9300 Build/IMM76D) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
    "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; HMA-L29; HMSCore 6.11.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.0.322 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; U; Android 12; en-gb; 2201117TG Build/SKQ1.211006.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.127 Mobile Safari/537.36 XiaoMi/MiuiBrowser/13.28.0-gn",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.0.0 Mobile DuckDuckGo/5 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/115.3.1 like Chrome/115.0.5790.171 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/16.6;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.5845.163 Mobile Safari/537.36 Instagram 298.0.0.31.110 Android (33/13; 450dpi; 1080x2208; samsung; SM-A536B; a53x; s5e8825; en_GB; 509979453)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/282.0.565139773 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/13.10.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.60.0.46 (like Safari/8617.2.4.10.8, panda)",
    "Mozilla/5.0 (BB10; Touch) AppleWebKit/537.10+ (KHTML, like Gecko) Version/10.0.9.2372 Mobile Safari/537.10+",
    "BlackBerry9700/5.0.0.862 Profile/MIDP-2.1 Configuration/CLDC-1.1 VendorID/167",
    "Nokia6300/2.0 (07.21) Profile/MIDP-2.0 Configuration/CLDC-1.1",
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36 EdgA/125.0.2535.51",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/125.2535.52 Mobile/15E148 Safari/605.1.15",
]

BROWSER_SAMPLE = 400


def fetch(name):
    """The package's tarball at its pinned version, checked against the registry's integrity."""
    version, integrity = PINNED[name]
    url = f"{REGISTRY}/{name}/-/{name}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=60) as r:
        data = r.read()
    algo, want = integrity.split("-", 1)
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        sys.exit(f"{name}@{version}: integrity mismatch")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def member(tar, path):
    f = tar.extractfile(path)
    if f is None:
        sys.exit(f"{path} missing")
    return f.read()


def expand(pattern):
    """The alternatives of a regex made of literals, `[xX]` classes, groups of alternatives,
    `^`/`$` anchors and gaps (`[\\s\\S]*`, `\\d+`); each alternative is a list of literal
    pieces, `^` and `$` kept as pieces. Anything else raises, so an upstream change that this
    cannot express is seen, not silently widened."""
    i, n = 0, len(pattern)

    # Recursive descent: a sequence of items, each item giving its alternatives.
    def seq():
        nonlocal i
        outs = [[]]
        while i < n and pattern[i] not in "|)":
            alts = item()
            outs = [o + x for o in outs for x in alts]
        return outs

    def alt():
        nonlocal i
        outs = seq()
        while i < n and pattern[i] == "|":
            i += 1
            outs += seq()
        return outs

    def item():
        nonlocal i
        c = pattern[i]
        if c == "(":
            i += 1
            inner = alt()
            if i >= n or pattern[i] != ")":
                raise ValueError("unclosed group")
            i += 1
            return inner
        if c in "^$":
            i += 1
            return [[c]]
        if pattern.startswith("[\\s\\S]*", i):
            i += len("[\\s\\S]*")
            return [["*"]]
        if pattern.startswith("[^-]", i):
            # `X([^-]|$)`: "X not followed by -": widened to X.
            i += len("[^-]")
            return [[]]
        if pattern.startswith("\\d+", i) or pattern.startswith("\\d", i):
            i += 3 if pattern.startswith("\\d+", i) else 2
            return [["*"]]
        if c == "[":
            end = pattern.index("]", i)
            chars = pattern[i + 1 : end]
            if len(set(chars.lower())) != 1:
                raise ValueError(f"class {chars}")
            i = end + 1
            return [[chars[0].lower()]]
        if c == "\\":
            nxt = pattern[i + 1]
            if nxt.isalnum():
                raise ValueError(f"escape \\{nxt}")
            i += 2
            return [[nxt]]
        if c in "*+?{}.":
            raise ValueError(f"operator {c}")
        i += 1
        return [[c]]

    alts = alt()
    if i != n:
        raise ValueError("trailing input")
    return alts


def rules_of(pattern, lower=True):
    """Literal rules (`lit`, `^lit`, `lit$`) for one regex: per alternative, its longest run of
    literal text, anchored where the regex anchors that run."""
    rules = set()
    for pieces in expand(pattern):
        runs, cur, prefix = [], "", False
        for p in pieces + ["*"]:
            if p == "^":
                prefix = True
            elif p in ("*", "$"):
                if cur:
                    runs.append((cur, prefix, p == "$"))
                cur, prefix = "", False
            else:
                cur += p
        if not runs:
            raise ValueError("no literal")
        text, pre, suf = max(runs, key=lambda r: len(r[0]))
        text = text.lower() if lower else text
        rules.add(("^" if pre else "") + text + ("$" if suf else ""))
    return rules


def minimal(rules):
    """The rules without those another rule already covers: a literal containing an unanchored
    literal, an anchored literal starting (or ending) with an anchored one of the same kind."""
    anywhere = {r for r in rules if not r.startswith("^") and not r.endswith("$")}

    def covered(r):
        body = r.removeprefix("^").removesuffix("$")
        if any(a != r and a in body for a in anywhere):
            return True
        pre, suf = r.startswith("^"), r.endswith("$")
        for o in rules:
            if o == r or o.startswith("^") != pre or o.endswith("$") != suf or (pre and suf):
                continue
            ob = o.removeprefix("^").removesuffix("$")
            if (pre and body.startswith(ob)) or (suf and body.endswith(ob)):
                return True
        return False

    return {r for r in rules if not covered(r)}


def isbot_literals(source):
    """isbot's plain-literal entries (optionally `^`-anchored): isbot matches case-insensitively."""
    m = re.search(r"var patterns_default = (\[.*?\]);", source, re.S)
    if not m:
        sys.exit("isbot: pattern list not found")
    out = set()
    for p in json.loads(m.group(1)):
        body = p[1:] if p.startswith("^") else p
        if re.fullmatch(r"[a-z0-9 _/\-:;@]+|[a-z0-9 _/\-:;@]*(\\\.[a-z0-9 _/\-:;@]*)+", body):
            out.add(("^" if p.startswith("^") else "") + body.replace("\\.", "."))
    return out


def main():
    check = "--check" in sys.argv[1:]
    crawlers = json.loads(member(fetch("crawler-user-agents"), "package/crawler-user-agents.json"))
    isbot_src = member(fetch("isbot"), "package/index.mjs").decode()
    raw = member(fetch("user-agents"), "package/dist/user-agents.json")
    browsers = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)

    rules = set()
    for entry in crawlers:
        if entry["pattern"] not in EXCLUDED:
            try:
                rules |= rules_of(entry["pattern"])
            except (ValueError, IndexError) as e:
                sys.exit(f"crawler-user-agents pattern {entry['pattern']!r}: {e}; extend `expand` or exclude it")
    isbot = isbot_literals(isbot_src)
    isbot_count = len(isbot)
    rules |= isbot
    rules = minimal(rules)
    for r in rules:
        body = r.strip("^$")
        if not body or body != body.strip("^$") or "\n" in body:
            sys.exit(f"rule {r!r} cannot be written")
    versions = ", ".join(f"{n}@{v}" for n, (v, _) in PINNED.items() if n != "user-agents")
    head = [
        "# Automation user agents: generated by tools/update_ua_patterns.py from npm packages",
        f"# {versions}; do not edit by hand.",
        f"# {len(crawlers) - len(EXCLUDED)} crawler-user-agents patterns and {isbot_count} isbot literals, as {len(rules)} rules",
        "# (rules another rule covers are left out).",
        "# Lower-case literals: `lit` anywhere, `^lit` at the start, `lit$` at the end of the user agent.",
    ]
    automation = "\n".join(head + sorted(rules)) + "\n"

    instances = []
    for entry in crawlers:
        for ua in entry.get("instances", []):
            if ua and "\t" not in ua and "\n" not in ua:
                instances.append(f"{entry['pattern']}\t{ua}")
    crawler_fixture = (
        f"# Every instance of crawler-user-agents@{PINNED['crawler-user-agents'][0]} (MIT): pattern<TAB>user agent.\n"
        + "\n".join(instances)
        + "\n"
    )

    distinct = sorted({b["userAgent"] for b in browsers})
    sample = sorted(random.Random(8).sample(distinct, min(BROWSER_SAMPLE, len(distinct))))
    browser_fixture = (
        f"# {len(sample)} user agents sampled from user-agents@{PINNED['user-agents'][0]} (BSD-2-Clause),\n"
        "# then legacy, in-app and device browsers it lacks (tools/update_ua_patterns.py).\n"
        + "\n".join(sample + LEGACY_BROWSERS)
        + "\n"
    )

    outputs = {
        "src/request/automation.txt": automation,
        "tests/fixtures/crawler_user_agents.txt": crawler_fixture,
        "tests/fixtures/browser_user_agents.txt": browser_fixture,
    }
    stale = []
    for path, text in outputs.items():
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            stale.append(path)
            if not check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    if check and stale:
        sys.exit("out of date: " + ", ".join(stale))
    print(f"{len(rules)} rules; {len(instances)} crawler instances; {len(sample) + len(LEGACY_BROWSERS)} browsers")


if __name__ == "__main__":
    main()
