-- Read the buckets of a series together with the delta-log counter, in one
-- atomic step, so a push subscriber that starts from this snapshot applies
-- exactly the deltas with n > seq. KEYS[1] is the dseq key, the rest are the
-- bucket keys; ARGV[1] says what to read of each: "total" (count hash total),
-- "all" (the whole count hash) or "hll" (PFCOUNT).
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = { seq }
local mode = ARGV[1]
for i = 2, #KEYS do
  if mode == 'total' then
    out[i] = redis.call('HGET', KEYS[i], '_') or '0'
  elseif mode == 'hll' then
    out[i] = redis.call('PFCOUNT', KEYS[i])
  else
    out[i] = redis.call('HGETALL', KEYS[i])
  end
end
return out
