-- 50 pageviews, one fixed body per thread: wrk's request path runs no Lua
-- per request. Ingest does not deduplicate (the aggregator does), so
-- repeated ids cost the ingest role what distinct ones do.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", tostring(os.time()) .. "-" .. counter)
end
function init(args)
  local t = {}
  for i = 1, 50 do
    t[i] = string.format('{"id":"w%s-%d","site":"bench","type":"pageview","url":"https://example.com/p/%d","uid":"u-%d"}', tid, i, i % 1000, i)
  end
  wrk.method = "POST"
  wrk.path = "/v1/collect"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
  wrk.body = "[" .. table.concat(t, ",") .. "]"
end
