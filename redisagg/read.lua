-- Read the buckets of a series together with the delta-log counter, in one
-- atomic step, so a push subscriber that starts from this snapshot applies
-- exactly the deltas with n > seq. KEYS[1] is the dseq key. ARGV[1] says
-- what to read:
--   "total" (count hash total) or "hll" (PFCOUNT) of each of KEYS[2..];
--   "top": the ARGV[3] values with the largest counts over the top-K sets
--   KEYS[3+ARGV[5]..] (summed into the scratch key KEYS[2], deleted after),
--   then those values' counts in each count hash KEYS[3..2+ARGV[5]]
--   (dimension ARGV[4]); ARGV[2] is the number of top-K sets;
--   it answers { seq, { value, total, ... }, counts of hash 1, ... }.
-- A group_by at the 10s step, which keeps no top-K sets, is not read here:
-- Store.Snapshot reads its whole hashes in a MULTI/EXEC, which costs Redis
-- a third of what copying them into Lua does.
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = { seq }
local mode = ARGV[1]
local CHUNK = 1000

-- topk returns the k members of src with the largest scores, ties broken
-- by the smaller member, as member, score pairs (in no particular order).
local function topk(src, k)
  local kth = redis.call('ZREVRANGE', src, k - 1, k - 1, 'WITHSCORES')
  if #kth == 0 then return redis.call('ZREVRANGE', src, 0, -1, 'WITHSCORES') end
  local s = kth[2]
  local res = redis.call('ZREVRANGEBYSCORE', src, '+inf', '(' .. s, 'WITHSCORES')
  local ties = redis.call('ZRANGEBYSCORE', src, s, s, 'WITHSCORES', 'LIMIT', 0, k - #res / 2)
  for i = 1, #ties do res[#res + 1] = ties[i] end
  return res
end

-- union sums the sets KEYS[a..b] into the scratch key, in chunks (unpack
-- of very long lists overflows the Lua C stack), and returns the key to
-- read: the set itself when there is one.
local function union(a, b)
  if a == b then return KEYS[a] end
  local scratch = KEYS[2]
  redis.call('DEL', scratch)
  local i = a
  while i <= b do
    local j = math.min(i + CHUNK - 1, b)
    if i == a then
      redis.call('ZUNIONSTORE', scratch, j - i + 1, unpack(KEYS, i, j))
    else
      redis.call('ZUNIONSTORE', scratch, j - i + 2, scratch, unpack(KEYS, i, j))
    end
    i = j + 1
  end
  return scratch
end

if mode == 'top' then
  local ntop, k, dim, nhash = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
  local a = 3 + nhash
  local src = union(a, a + ntop - 1)
  local top = topk(src, k)
  if src == KEYS[2] then redis.call('DEL', src) end
  out[2] = top
  if nhash > 0 and #top > 0 then
    local fields = {}
    for i = 1, #top, 2 do fields[#fields + 1] = dim .. '\31' .. top[i] end
    for i = 1, nhash do
      out[2 + i] = redis.call('HMGET', KEYS[2 + i], unpack(fields))
    end
  end
  return out
end

for i = 2, #KEYS do
  if mode == 'total' then
    out[i] = redis.call('HGET', KEYS[i], '_') or '0'
  elseif mode == 'hll' then
    out[i] = redis.call('PFCOUNT', KEYS[i])
  else
    return redis.error_reply('read.lua: unknown mode ' .. tostring(mode))
  end
end
return out
