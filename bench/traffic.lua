-- Browser-like GETs from a pool of 10,000 client addresses (198.18.0.0/15, the benchmarking
-- range). The example policy trusts one proxy hop, so botgate takes the client from
-- x-forwarded-for. Requests are built once in init(): per-request Lua work would make wrk,
-- not Envoy, the bottleneck.
local POOL = 10000
local reqs = {}

function init(args)
  math.randomseed(os.time())
  for i = 0, POOL - 1 do
    local ip = string.format("198.18.%d.%d", math.floor(i / 256), i % 256)
    reqs[i + 1] = wrk.format("GET", "/", {
      ["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
      ["accept"] = "text/html",
      ["accept-language"] = "en",
      ["x-forwarded-for"] = ip,
    })
  end
end

function request()
  return reqs[math.random(POOL)]
end
