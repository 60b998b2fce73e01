-- Browser-like GETs from a pool of 10,000 client addresses. The example policy trusts one
-- proxy hop, so botgate takes the client from x-forwarded-for. Addresses are in 45.10.0.0 -
-- 45.49.255.0: outside the example policy's threat-intel blocklist (198.18.0.0/15,
-- the benchmarking range) and its allow-list CIDRs. Paths mix pages and the /api/ and /v1/
-- prefixes the detector applies to; half the clients carry a session cookie.
-- Requests are built once in init(): per-request Lua work would make wrk, not Envoy, the
-- bottleneck.
-- BENCH_POOL: fewer addresses, so per-client answers (vendor signals) stay cached.
local POOL = tonumber(os.getenv("BENCH_POOL") or "10000")
local PATHS = { "/", "/api/products?page=2", "/v1/search?q=shoes", "/account/orders", "/cart", "/static/app.js" }
local reqs = {}

function init(args)
  math.randomseed(os.time())
  for i = 0, POOL - 1 do
    local headers = {
      ["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
      ["accept"] = "text/html",
      ["accept-language"] = "en",
      ["x-forwarded-for"] = string.format("45.%d.%d.9", 10 + math.floor(i / 256), i % 256),
    }
    if i % 2 == 0 then
      headers["cookie"] = string.format("session_id=s%08x; theme=dark", i * 2654435761 % 4294967296)
    end
    reqs[i + 1] = wrk.format("GET", PATHS[i % #PATHS + 1], headers)
  end
end

function request()
  return reqs[math.random(POOL)]
end
