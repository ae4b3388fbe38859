local n = 0
local counter = 0
function setup(thread) counter = counter + 1; thread:set("tid", tostring(os.time()) .. "-" .. counter) end
request = function()
  local t = {}
  for i = 1, 50 do
    n = n + 1
    t[i] = string.format('{"id":"w%s-%d","site":"bench","type":"pageview","url":"https://example.com/p/%d","uid":"u-%d"}', tid, n, n % 1000, n % 100000)
  end
  return wrk.format("POST", "/v1/collect", {["Content-Type"]="application/json", ["User-Agent"]="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"}, "[" .. table.concat(t, ",") .. "]")
end
