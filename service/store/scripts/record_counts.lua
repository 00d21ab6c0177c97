-- Dedupe and count in one script, so no crash can separate the two. Each accepted event's
-- new totals (not deltas: discounting makes a total depend on when it was last updated)
-- are appended, as one stream entry per batch, so snapshots can catch up without a reload.
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
-- The change tokens are gen|kind|at|total|cluster:total,...|item (codecs.decode_count_total).
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
local function add(ki, item, delta)
  if half_life == 0 then
    return redis.call('HINCRBYFLOAT', KEYS[ki], item, delta)
  end
  local value = tonumber(redis.call('HGET', KEYS[ki], item) or '0')
  local at = tonumber(redis.call('HGET', KEYS[ki + 1], item) or since)
  value = value * math.pow(0.5, math.max(now - at, 0) / half_life) + tonumber(delta)
  local text = string.format('%.17g', value)
  redis.call('HSET', KEYS[ki], item, text)
  redis.call('HSET', KEYS[ki + 1], item, stamp)
  return text
end
local tokens, counted = {}, false
local n = 0
ki, ai = 6, 5
while ai <= #ARGV do
  n = n + 1
  local item, gen, kind, owner = ARGV[ai], ARGV[ai + 1], ARGV[ai + 2], ARGV[ai + 3]
  local m, n_stats = tonumber(ARGV[ai + 4]), tonumber(ARGV[ai + 5])
  if verdicts[n] == NEW then
    redis.call('SET', KEYS[ki], owner, 'EX', ttl)
    local total = add(ki + 1, item, 1)
    local parts = {}
    for j = 1, m do
      parts[j] = ARGV[ai + 4 + 2 * j] .. ':' .. add(ki + 1 + stride * j, item, ARGV[ai + 5 + 2 * j])
    end
    counted = counted or n_stats > 0
    for j = 1, n_stats do
      redis.call('HINCRBY', KEYS[3], ARGV[ai + 5 + 2 * m + j], 1)
    end
    local f = ai + 6 + 2 * m + n_stats
    for j = 1, tonumber(ARGV[f]) do
      redis.call('HINCRBYFLOAT', KEYS[5], ARGV[f + 2 * j - 1], ARGV[f + 2 * j])
    end
    local clusters = table.concat(parts, ',')
    tokens[#tokens + 1] = table.concat({gen, kind, stamp, total, clusters, item}, '|')
  end
  ki = ki + 1 + stride * (1 + m)
  ai = ai + 7 + 2 * m + n_stats + 2 * tonumber(ARGV[ai + 6 + 2 * m + n_stats])
end
if counted then redis.call('HSETNX', KEYS[3], 'since', ARGV[3]) end
if #tokens > 0 then
  local version = redis.call('INCR', KEYS[1])
  redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*',
             'v', version, 'd', table.concat(tokens, '\n'))
end
return verdicts
