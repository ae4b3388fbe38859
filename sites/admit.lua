-- Admit a new site to the shared set KEYS[1] unless it already holds
-- ARGV[2] sites: one script, so concurrent nodes cannot overshoot the cap.
-- Returns {result, size}: result 1 already a member, 2 added, 0 refused.
local key, site, max = KEYS[1], ARGV[1], tonumber(ARGV[2])
local n = redis.call('SCARD', key)
if redis.call('SISMEMBER', key, site) == 1 then return { 1, n } end
if n >= max then return { 0, n } end
redis.call('SADD', key, site)
return { 2, n + 1 }
