-- Dedupe and count in one script, so no crash can separate the two. Every key is in one
-- count shard's slot (keys.py): the batch's events of that shard. The increments of the
-- accepted events are summed per count (one write per touched count, not per event) and
-- appended as one stream entry, so snapshots can catch up without a reload.
-- KEYS[1] arms version, KEYS[2] changes stream, KEYS[3] stats hash, KEYS[4] decay-since,
-- KEYS[5] fatigue hash (the learned seen decay's evidence, counted under the same verdict);
-- then per event: its dedupe key, then the global count key and one per credited cluster,
-- each followed by its time key when discounting. ARGV[1] retention s, ARGV[2] oldest
-- stream id to keep, ARGV[3] now, ARGV[4] count half-life s (0 = keep every event); then
-- per event: item, gen, kind, owner, m, n_stats, m (cluster, millionths) pairs, n_stats
-- stats fields to count, n_fatigue, n_fatigue (fatigue field, amount) pairs to add.
-- The marker's value is its owner (codecs.encode_owner); '1', written by earlier releases
-- and for files without owners, is an owner nobody matches. Returns a verdict per event
-- (records.Verdict): 1 new, 0 a replay by its owner, 2 a replay of an ownerless marker,
-- 3 claimed by another owner. Every verdict is decided before anything is written: with
-- any 3 the script writes nothing.
-- The change tokens are gen|kind|at|added|cluster:added,...|item, one per (gen, kind,
-- item) the batch counted (codecs.decode_count_delta); `at` is now when discounting.
local NEW, REPLAY, UNOWNED, CLAIMED = 1, 0, 2, 3
local ttl = tonumber(ARGV[1])
local now = tonumber(ARGV[3])
local half_life = tonumber(ARGV[4])
local stride = 1
if half_life > 0 then stride = 2 end

local verdicts, held, claimed = {}, {}, false
local ki, ai = 6, 5
while ai <= #ARGV do
  local key, owner = KEYS[ki], ARGV[ai + 3]
  local m, n_stats = tonumber(ARGV[ai + 4]), tonumber(ARGV[ai + 5])
  -- `held` answers for markers this batch claims, so a repeated event_id is decided too
  local holder = held[key]
  if holder == nil then holder = redis.call('GET', key) end
  local verdict = NEW
  if holder then
    if holder == owner then verdict = REPLAY
    elseif holder == '1' then verdict = UNOWNED
    else verdict = CLAIMED; claimed = true end
  else
    held[key] = owner
  end
  verdicts[#verdicts + 1] = verdict
  ki = ki + 1 + stride * (1 + m)
  ai = ai + 7 + 2 * m + n_stats + 2 * tonumber(ARGV[ai + 6 + 2 * m + n_stats])
end
if claimed then return verdicts end

local stamp, since = '', now
if half_life > 0 then
  stamp = ARGV[3]
  -- counts written before discounting was turned on start to fade from that moment
  redis.call('SET', KEYS[4], ARGV[3], 'NX')
  since = tonumber(redis.call('GET', KEYS[4]))
end
-- Sums per count field (key index of its first use, item) and per token, in first-use order.
local sums, fields = {}, {}
local function queue(ki, item, delta)
  local id = KEYS[ki] .. '\n' .. item
  local field = sums[id]
  if field == nil then
    field = {ki, item, 0}
    sums[id] = field
    fields[#fields + 1] = field
  end
  field[3] = field[3] + delta
end
local added, tokens = {}, {}
local fatigue, fatigue_order = {}, {}
local counted = false
local n = 0
ki, ai = 6, 5
while ai <= #ARGV do
  n = n + 1
  local item, gen, kind, owner = ARGV[ai], ARGV[ai + 1], ARGV[ai + 2], ARGV[ai + 3]
  local m, n_stats = tonumber(ARGV[ai + 4]), tonumber(ARGV[ai + 5])
  if verdicts[n] == NEW then
    redis.call('SET', KEYS[ki], owner, 'EX', ttl)
    queue(ki + 1, item, 1)
    local token_id = gen .. '|' .. kind .. '|' .. item
    local token = added[token_id]
    if token == nil then
      token = {gen = gen, kind = kind, item = item, total = 0, clusters = {}, order = {}}
      added[token_id] = token
      tokens[#tokens + 1] = token
    end
    token.total = token.total + 1
    for j = 1, m do
      local cluster, share = ARGV[ai + 4 + 2 * j], tonumber(ARGV[ai + 5 + 2 * j])
      queue(ki + 1 + stride * j, item, share)
      if token.clusters[cluster] == nil then
        token.clusters[cluster] = 0
        token.order[#token.order + 1] = cluster
      end
      token.clusters[cluster] = token.clusters[cluster] + share
    end
    counted = counted or n_stats > 0
    for j = 1, n_stats do
      redis.call('HINCRBY', KEYS[3], ARGV[ai + 5 + 2 * m + j], 1)
    end
    local f = ai + 6 + 2 * m + n_stats
    for j = 1, tonumber(ARGV[f]) do
      local name = ARGV[f + 2 * j - 1]
      if fatigue[name] == nil then fatigue_order[#fatigue_order + 1] = name end
      fatigue[name] = (fatigue[name] or 0) + tonumber(ARGV[f + 2 * j])
    end
  end
  ki = ki + 1 + stride * (1 + m)
  ai = ai + 7 + 2 * m + n_stats + 2 * tonumber(ARGV[ai + 6 + 2 * m + n_stats])
end
for _, field in ipairs(fields) do
  local fki, item, delta = field[1], field[2], field[3]
  if half_life == 0 then
    redis.call('HINCRBYFLOAT', KEYS[fki], item, delta)
  else
    local value = tonumber(redis.call('HGET', KEYS[fki], item) or '0')
    local at = tonumber(redis.call('HGET', KEYS[fki + 1], item) or since)
    value = value * math.pow(0.5, math.max(now - at, 0) / half_life) + delta
    redis.call('HSET', KEYS[fki], item, string.format('%.17g', value))
    redis.call('HSET', KEYS[fki + 1], item, stamp)
  end
end
for _, name in ipairs(fatigue_order) do
  redis.call('HINCRBYFLOAT', KEYS[5], name, fatigue[name])
end
if counted then redis.call('HSETNX', KEYS[3], 'since', ARGV[3]) end
if #tokens > 0 then
  local lines = {}
  for i, token in ipairs(tokens) do
    local parts = {}
    for j, cluster in ipairs(token.order) do
      parts[j] = cluster .. ':' .. string.format('%.17g', token.clusters[cluster])
    end
    lines[i] = table.concat({token.gen, token.kind, stamp, string.format('%.17g', token.total),
                             table.concat(parts, ','), token.item}, '|')
  end
  local version = redis.call('INCR', KEYS[1])
  redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*', 'v', version, 'd', table.concat(lines, '\n'))
end
return verdicts
