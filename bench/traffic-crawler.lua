-- A verified crawler at full speed: Googlebot's user agent from 256 addresses (192.0.2.0/24,
-- each with a PTR under googlebot.com that forward-confirms, served by the bench's unbound).
-- After the warm-up every address's verification is cached, so this measures what a cached
-- verification costs per request. Requests are built once in init().
local POOL = 256
local PATHS = { "/", "/sitemap.xml", "/products/1", "/products/2?color=red", "/blog/post" }
local reqs = {}

function init(args)
  math.randomseed(os.time())
  for i = 0, POOL - 1 do
    local headers = {
      ["user-agent"] = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
      ["accept"] = "*/*",
      ["accept-encoding"] = "gzip, deflate, br",
      ["x-forwarded-for"] = string.format("192.0.2.%d", i),
    }
    reqs[i + 1] = wrk.format("GET", PATHS[i % #PATHS + 1], headers)
  end
end

function request()
  return reqs[math.random(POOL)]
end
