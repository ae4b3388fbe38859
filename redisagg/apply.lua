-- Apply one commit (or, on Redis Cluster, one site part of it, or only the
-- shard position) atomically. See apply.go for the ARGV layout and
-- docs/redis-keys.md for the keys. Every check runs before the first write,
-- because Redis does not roll a script back when it fails half-way.
local A = ARGV
local shard, first, last = A[1], A[2], A[3]
local fence = tonumber(A[4])
local dedupFrom, dedupClock = A[5], A[6]
-- A[7] is "MAXDIM MAXBYTES": the distinct values and the bytes of distinct
-- values one dimension may hold in one bucket hash.
local maxdim, maxbytes = string.match(A[7], '^(%d+) (%d+)$')
maxdim, maxbytes = tonumber(maxdim), tonumber(maxbytes)
local dhist = A[8]
local deltas = A[9] == '1'
local posIdx = tonumber(A[10])
local nparts = tonumber(A[11])
local idleTTL = tonumber(A[#A]) -- last, after the part bodies (apply.go)
local SEP = '\31'
local OTHER = '(other)'
local CHUNK = 1000
-- Sums of sum and avg metrics stay within 2^53 - 1 in magnitude, where Lua
-- numbers (doubles) are exact integers (metric.MaxScaled); counts never
-- come near. A sum that would pass it stays at the bound and is counted.
local MAXS = 9007199254740991

-- Sequence numbers are decimal strings of up to 56 digits: longer is larger,
-- equal lengths compare as text. Never as Lua numbers (doubles).
local function cmpseq(a, b)
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  if a == b then return 0 end
  if a < b then return -1 end
  return 1
end

local sformat = string.format
local function fmt(n) return sformat('%d', n) end

-- jstr quotes s as a JSON string. The delta JSON is built from strings
-- rather than with cjson.encode of tables: it is the hot path, and most
-- labels need no escaping.
-- Values repeat across the steps of a commit, so quoted forms are cached.
local jcache = {}
local function jstr(s)
  local q = jcache[s]
  if q then return q end
  if string.find(s, '[%c"\\\128-\255]') then q = cjson.encode(s) else q = '"' .. s .. '"' end
  jcache[s] = q
  return q
end

-- chunked runs cmd key list... in chunks of CHUNK*step arguments, since unpack of very long lists
-- overflows the Lua C stack. It returns the concatenated array replies, or
-- the largest integer reply.
local function chunked(cmd, key, list, step)
  local out, maxint = {}, 0
  local i = 1
  while i <= #list do
    local j = math.min(i + CHUNK * step - 1, #list)
    local r = redis.call(cmd, key, unpack(list, i, j))
    if type(r) == 'table' then
      local no = #out
      for k = 1, #r do out[no + k] = r[k] end
    elseif type(r) == 'number' and r > maxint then
      maxint = r
    end
    i = j + 1
  end
  return out, maxint
end

-- A delta point is eight pieces of one flat list (see point), concatenated
-- once per entry, so the hot loop creates no per-point strings beyond the
-- new values it writes anyway. Long strings are what to avoid: Lua 5.1
-- hashes only about 32 sampled characters of a string, so many long strings
-- that differ in a few characters (JSON of points) collide in its string
-- table and every string creation walks the chain. An entry holds at most
-- MAXPTS points (about 100 bytes each), which bounds an entry's size
-- whatever the commit's size. table.concat runs over at most 480 pieces:
-- the embedded server's Lua (gopher-lua) puts every piece of one
-- table.concat on a bounded stack. An entry also holds at most MAXBYTES
-- bytes of JSON, whatever its labels: values are cut at 256 bytes
-- (metric.CutValue), so one point stays far below it.
local MAXPTS = 256
local MAXBYTES = 32768
local PER = 60

local function point(pts, np, pre, lopen, lval, addsep, add, value)
  pts[np + 1], pts[np + 2], pts[np + 3], pts[np + 4] = pre, lopen, lval, addsep
  pts[np + 5], pts[np + 6], pts[np + 7], pts[np + 8] = add, ',"value":', value, '},'
  return np + 8
end

-- entry writes points a..b as one log entry and publishes it.
local function entry(name, dseq, dlog, channel, pts, a, b)
  local parts = {}
  for c = a, b, PER do
    parts[#parts + 1] = table.concat(pts, '', 8 * c - 7, 8 * math.min(c + PER - 1, b))
  end
  -- The last piece is '},': the entry's JSON drops its comma.
  local body = table.concat(parts)
  local n = redis.call('INCR', dseq)
  local js = '{"n":' .. fmt(n) .. ',"metric":' .. jstr(name) .. ',"points":[' ..
    string.sub(body, 1, -2) .. ']}'
  redis.call('XADD', dlog, 'MAXLEN', '~', dhist, fmt(n) .. '-0', 'd', js)
  redis.call('PUBLISH', channel, js)
end

-- emit splits the points into entries of at most MAXPTS points and MAXBYTES
-- bytes of JSON each.
local function emit(name, dseq, dlog, channel, pts)
  local np = #pts / 8
  -- The entry's frame: '{"n":', up to 20 digits, ',"metric":', the name,
  -- ',"points":[', ']}'.
  local budget = MAXBYTES - (#jstr(name) + 48)
  local a, size = 1, 0
  for c = 1, np do
    local q = 8 * c - 8
    local ps = #pts[q + 1] + #pts[q + 2] + #pts[q + 3] + #pts[q + 4] + #pts[q + 5] + #pts[q + 6] + #pts[q + 7] + #pts[q + 8]
    if c > a and (c - a >= MAXPTS or size + ps > budget) then
      entry(name, dseq, dlog, channel, pts, a, c - 1)
      a, size = c, 0
    end
    size = size + ps
  end
  entry(name, dseq, dlog, channel, pts, a, np)
end

-- Phase 1: checks.
if posIdx > 0 then
  local pf = redis.call('HGET', KEYS[posIdx], 'fence')
  if pf and tonumber(pf) > fence then
    return redis.error_reply('FENCED shard ' .. shard .. ' has fence ' .. pf)
  end
end
local todo = {}
for i = 1, nparts do
  local ck = KEYS[tonumber(A[10 + 2 * i])]
  local v = redis.call('HMGET', ck, shard, shard .. ':fence')
  if v[2] and tonumber(v[2]) > fence then
    return redis.error_reply('FENCED shard ' .. shard .. ' has fence ' .. v[2] .. ' in ' .. ck)
  end
  local stored = v[1]
  if stored and cmpseq(stored, last) >= 0 then
    todo[i] = false
  elseif stored and cmpseq(first, stored) <= 0 then
    return redis.error_reply('OVERLAP ' .. ck .. ' holds ' .. shard .. ' up to ' .. stored ..
      ', commit is ' .. first .. '..' .. last)
  else
    todo[i] = true
  end
end

-- Phase 2: writes.
local overflow, applied, skipped, saturated = 0, 0, 0, 0
-- flags[i] is '1' when part i was applied: the caller then writes what it
-- keeps outside Redis (the embedded mode's row files) for those parts only.
local flags = {}

local function clamp(n)
  if n > MAXS then
    saturated = saturated + 1
    return MAXS
  elseif n < -MAXS then
    saturated = saturated + 1
    return -MAXS
  end
  return n
end

local function applyHash(p, points)
  local p0 = p
  local key = KEYS[tonumber(A[p])]
  local exp, step = A[p + 1], A[p + 2]
  local total, ndims = tonumber(A[p + 4]), tonumber(A[p + 5])
  p = p + 6
  local dims = {}
  local fields, nf = { '_' }, 1
  for d = 1, ndims do
    local dim, n = A[p], tonumber(A[p + 3])
    dims[d] = { dim = dim, jlab = '{' .. jstr(dim) .. ':', z = tonumber(A[p + 1]), zexp = A[p + 2], n = n, at = p + 4 }
    fields[nf + 1] = '#' .. dim
    fields[nf + 2] = dim .. SEP .. OTHER
    fields[nf + 3] = '#' .. dim .. ':bytes'
    nf = nf + 3
    local fp = dim .. SEP
    for j = 0, n - 1 do
      nf = nf + 1
      fields[nf] = fp .. A[p + 4 + 2 * j]
    end
    p = p + 4 + 2 * n
  end
  local old = chunked('HMGET', key, fields, 1)
  local out, no = {}, 2
  local t = clamp((tonumber(old[1]) or 0) + total)
  out[1], out[2] = '_', fmt(t)
  local pre, np
  if points then
    np = #points
    pre = '{"step":' .. jstr(step) .. ',"t":' .. A[p0 + 3] .. ',"labels":'
    if total ~= 0 then
      np = point(points, np, pre, '{}', '', ',"add":', A[p0 + 4], out[2])
    end
  end
  local k = 2
  for _, d in ipairs(dims) do
    local cnt = tonumber(old[k]) or 0
    local cnt0 = cnt
    local oldOther = tonumber(old[k + 1]) or 0
    local size = tonumber(old[k + 2]) or 0
    k = k + 3
    local otherAdd = 0
    local zs, nz = {}, 0
    -- The hot loop: one pass per value of every hash of a commit, so the
    -- helpers (clamp, fmt, jstr, point) are written out here, which
    -- halves the Lua work per value.
    local z, jlab, at = d.z > 0, d.jlab, d.at
    for _ = 1, d.n do
      -- Arithmetic on a decimal string converts it once; tonumber does
      -- it twice (Lua 5.1 checks, then converts).
      local v, as = A[at], A[at + 1]
      local add = as + 0
      local o = old[k]
      local nv
      if v == OTHER then
        otherAdd = otherAdd + add
      elseif o then
        nv = o + add
      elseif cnt < maxdim and size + #v <= maxbytes then
        cnt = cnt + 1
        size = size + #v
        nv = add
      else
        otherAdd = otherAdd + add
        overflow = overflow + 1
      end
      if nv then
        if nv > MAXS or nv < -MAXS then nv = clamp(nv) end
        local ns = sformat('%d', nv)
        out[no + 1], out[no + 2] = fields[k], ns
        no = no + 2
        if z then
          zs[nz + 1], zs[nz + 2] = ns, v
          nz = nz + 2
        end
        if points then
          local q = jcache[v] or jstr(v)
          points[np + 1], points[np + 2], points[np + 3], points[np + 4] = pre, jlab, q, '},"add":'
          points[np + 5], points[np + 6], points[np + 7], points[np + 8] = as, ',"value":', ns, '},'
          np = np + 8
        end
      end
      k = k + 1
      at = at + 2
    end
    -- Sums may add a negative or zero (other); counts add only positives.
    if otherAdd ~= 0 then
      local ns = fmt(clamp(oldOther + otherAdd))
      out[no + 1], out[no + 2] = d.dim .. SEP .. OTHER, ns
      no = no + 2
      if d.z > 0 then
        zs[nz + 1], zs[nz + 2] = ns, OTHER
        nz = nz + 2
      end
      if points then
        np = point(points, np, pre, d.jlab, '"' .. OTHER .. '"', '},"add":', fmt(otherAdd), ns)
      end
    end
    if cnt ~= cnt0 then
      out[no + 1], out[no + 2] = '#' .. d.dim, fmt(cnt)
      out[no + 3], out[no + 4] = '#' .. d.dim .. ':bytes', fmt(size)
      no = no + 4
    end
    if nz > 0 then
      chunked('ZADD', KEYS[d.z], zs, 2)
      redis.call('PEXPIREAT', KEYS[d.z], d.zexp)
    end
  end
  chunked('HSET', key, out, 2)
  redis.call('PEXPIREAT', key, exp)
  return p
end

local function applyHLL(p, points)
  local key = KEYS[tonumber(A[p])]
  local exp, step, n = A[p + 1], A[p + 2], tonumber(A[p + 4])
  local before = 0
  if points then before = redis.call('PFCOUNT', key) end
  local changed = 0
  local i = p + 5
  local stop = p + 4 + n
  while i <= stop do
    local j = math.min(i + CHUNK - 1, stop)
    if redis.call('PFADD', key, unpack(A, i, j)) == 1 then changed = 1 end
    i = j + 1
  end
  redis.call('PEXPIREAT', key, exp)
  if points and changed == 1 then
    local after = redis.call('PFCOUNT', key)
    if after ~= before then
      point(points, #points, '{"step":' .. jstr(step) .. ',"t":' .. A[p + 3] .. ',"labels":', '{}', '',
        ',"add":', fmt(after - before), fmt(after))
    end
  end
  return stop + 1
end

-- The rows of an hour are one logical string kept in segments of ROWSEG
-- bytes (Keys.rowSegment; rows.go reads them): segment 0 is the hour's
-- key, segment i its key .. ':' .. i, and key .. ':len' (passed) holds the
-- logical length. APPEND copies the whole string whenever Redis grows it,
-- so one string per hour made every append cost as much as the hour held
-- (milliseconds per call at a few tens of MB, and 512 MB is Redis's limit
-- for a string). A segment is written whole once full (SET of what it held
-- and its last piece), so that it holds no spare room either.
local ROWSEG = 1048512

local function appendRows(key, lenkey, exp, s)
  local L = redis.call('GET', lenkey)
  if L then
    L = tonumber(L)
  else
    L = redis.call('STRLEN', key)
    if L > ROWSEG then
      -- A string written whole before segments: it grows whole until it
      -- expires, and readers read it whole (no length key).
      L = redis.call('APPEND', key, s)
      redis.call('PEXPIREAT', key, exp)
      return L
    end
  end
  local seg, off = math.floor(L / ROWSEG), L % ROWSEG
  local pos, n = 1, #s
  while pos <= n do
    local take = math.min(n - pos + 1, ROWSEG - off)
    local piece = s
    if pos > 1 or take < n then piece = string.sub(s, pos, pos + take - 1) end
    local sk = key
    if seg > 0 then sk = key .. ':' .. fmt(seg) end
    if off + take == ROWSEG then
      if off > 0 then piece = (redis.call('GET', sk) or '') .. piece end
      redis.call('SET', sk, piece)
    else
      redis.call('APPEND', sk, piece)
    end
    redis.call('PEXPIREAT', sk, exp)
    pos, off, seg = pos + take, 0, seg + 1
  end
  L = L + n
  redis.call('SET', lenkey, fmt(L), 'PXAT', exp)
  return L
end

-- applyRows appends the part's fact rows to the strings of their hours
-- and tells live queries which hours grew, and to what length, so that
-- they read only the new bytes (from the length they hold).
local function applyRows(p)
  local n = tonumber(A[p])
  p = p + 1
  local sig = {}
  for j = 1, n do
    local len = appendRows(KEYS[tonumber(A[p])], KEYS[tonumber(A[p + 1])], A[p + 2], A[p + 4])
    sig[j] = A[p + 3] .. ':' .. fmt(len)
    p = p + 5
  end
  if deltas and n > 0 then redis.call('PUBLISH', A[p], table.concat(sig, ',')) end
  return p + 1
end

for i = 1, nparts do
  if todo[i] then
    local ck = KEYS[tonumber(A[10 + 2 * i])]
    local p = tonumber(A[11 + 2 * i])
    local nmetrics = tonumber(A[p])
    p = p + 1
    for _ = 1, nmetrics do
      local name, dseq, dlog, channel = A[p], tonumber(A[p + 1]), tonumber(A[p + 2]), A[p + 3]
      local nhash, nhll = tonumber(A[p + 4]), tonumber(A[p + 5])
      p = p + 6
      local points
      if deltas and dseq > 0 then points = {} end
      for _ = 1, nhash do p = applyHash(p, points) end
      for _ = 1, nhll do p = applyHLL(p, points) end
      if points and #points > 0 then
        emit(name, KEYS[dseq], KEYS[dlog], channel, points)
        if idleTTL > 0 then
          redis.call('PEXPIRE', KEYS[dseq], idleTTL)
          redis.call('PEXPIRE', KEYS[dlog], idleTTL)
        end
      end
    end
    p = applyRows(p)
    redis.call('HSET', ck, shard, last, shard .. ':fence', A[4])
    if idleTTL > 0 then redis.call('PEXPIRE', ck, idleTTL) end
    applied = applied + 1
    flags[i] = '1'
  else
    skipped = skipped + 1
    flags[i] = '0'
  end
end

if posIdx > 0 then
  local cur = redis.call('HGET', KEYS[posIdx], 'seq')
  if not cur or cmpseq(cur, last) < 0 then
    redis.call('HSET', KEYS[posIdx], 'seq', last, 'dedup_from', dedupFrom, 'dedup_clock', dedupClock, 'fence', A[4])
  end
end
return { overflow, applied, skipped, saturated, table.concat(flags) }
