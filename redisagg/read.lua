-- Read the buckets of a series together with the delta-log counter, in one
-- atomic step, so a push subscriber that starts from this snapshot applies
-- exactly the deltas with n > seq. KEYS[1] is the dseq key. ARGV[1] says
-- what to read:
--   "total" (count hash total) or "hll" (PFCOUNT) of each of KEYS[2..];
--   "top": the ARGV[3] values with the largest counts over the top-K sets
--   KEYS[3+ARGV[5]..] (summed into the scratch key KEYS[2], deleted after),
--   then those values' counts in each count hash KEYS[3..2+ARGV[5]]
--   (dimension ARGV[4]); ARGV[2] is the number of top-K sets;
--   "sum": the same answer from the count hashes KEYS[2..] alone, for
--   steps without top-K sets (ARGV[2] values of dimension ARGV[3]): the
--   hashes are read here, and only the chosen values leave Redis.
-- Both answer { seq, { value, total, ... }, counts of hash 1, ... }.
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

-- less orders strings by their bytes, as Go's strings.Compare does (Lua's
-- < follows the server's locale).
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- sum answers "sum": totals of each value over the hashes, the k largest
-- (ties to the smaller value), and their count in every hash.
local function sum(k, prefix)
  local pl = #prefix
  local tot, names, rows = {}, {}, {}
  for i = 2, #KEYS do
    local h = redis.call('HGETALL', KEYS[i])
    local row = {}
    for j = 1, #h, 2 do
      local f = h[j]
      if string.sub(f, 1, pl) == prefix then
        local v, n = string.sub(f, pl + 1), tonumber(h[j + 1])
        row[v] = n
        if not tot[v] then
          names[#names + 1] = v
          tot[v] = 0
        end
        tot[v] = tot[v] + n
      end
    end
    rows[i] = row
  end
  local chosen = names
  if #names > k then
    local t = {}
    for i, v in ipairs(names) do t[i] = tot[v] end
    table.sort(t, function(a, b) return a > b end)
    local kth = t[k]
    chosen = {}
    local ties = {}
    for _, v in ipairs(names) do
      if tot[v] > kth then
        chosen[#chosen + 1] = v
      elseif tot[v] == kth and (#ties < k or less(v, ties[#ties])) then
        -- Keep the k smallest ties, in order: at most k - #chosen are
        -- taken, and most values are refused by one comparison.
        if #ties == k then ties[#ties] = nil end
        local i = #ties + 1
        ties[i] = v
        while i > 1 and less(ties[i], ties[i - 1]) do
          ties[i], ties[i - 1] = ties[i - 1], ties[i]
          i = i - 1
        end
      end
    end
    for i = 1, k - #chosen do chosen[#chosen + 1] = ties[i] end
  end
  local top = {}
  for _, v in ipairs(chosen) do
    top[#top + 1] = v
    top[#top + 1] = string.format('%d', tot[v])
  end
  out[2] = top
  for i = 2, #KEYS do
    local row, c = rows[i], {}
    for j, v in ipairs(chosen) do c[j] = row[v] or 0 end
    out[1 + i] = c
  end
  return out
end

if mode == 'sum' then
  return sum(tonumber(ARGV[2]), ARGV[3] .. '\31')
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
