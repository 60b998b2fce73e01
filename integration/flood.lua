-- wrk script: every request from a new client address (x-forwarded-for), N requests in all.
local n = 0
local done = 0
local total = tonumber(os.getenv("FLOOD_REQUESTS") or "1000000")

request = function()
  n = n + 1
  local ip = string.format("%d.%d.%d.%d", 11 + math.floor(n / 65536) % 200, math.floor(n / 256) % 256, n % 256, 7)
  return wrk.format("GET", "/flood/" .. (n % 97), {
    ["x-forwarded-for"] = ip,
    ["user-agent"] = "flood/" .. (n % 13),
  })
end

response = function(status, headers, body)
  done = done + 1
  if done >= total then
    wrk.thread:stop()
  end
end
