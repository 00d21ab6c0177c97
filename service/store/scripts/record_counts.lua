-- Dedupe and count in one script, so no crash can separate the two. Each accepted event's
-- new totals (not deltas: discounting makes a total depend on when it was last updated)
-- are appended, as one stream entry per batch, so snapshots can catch up without a reload.
-- KEYS[1] arms version, KEYS[2] changes stream, KEYS[3] stats hash, KEYS[4] decay-since;
-- then per event: its dedupe key, then the global count key and one per credited cluster,
-- each followed by its time key when discounting. ARGV[1] retention s, ARGV[2] oldest
-- stream id to keep, ARGV[3] now, ARGV[4] count half-life s (0 = keep every event); then
-- per event: item, gen, kind, m, n_stats, m (cluster, millionths) pairs, n_stats stats
-- fields to count. Returns 1/0 per event (new / replay).
-- The change tokens are gen|kind|at|total|cluster:total,...|item (codecs.decode_count_total).
local ttl = tonumber(ARGV[1])
local now = tonumber(ARGV[3])
local half_life = tonumber(ARGV[4])
local stride, stamp, since = 1, '', now
if half_life > 0 then
  stride, stamp = 2, ARGV[3]
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
local flags, tokens, counted = {}, {}, false
local ki, ai = 5, 5
while ai <= #ARGV do
  local item, gen, kind = ARGV[ai], ARGV[ai + 1], ARGV[ai + 2]
  local m, n_stats = tonumber(ARGV[ai + 3]), tonumber(ARGV[ai + 4])
  if redis.call('SET', KEYS[ki], '1', 'NX', 'EX', ttl) then
    local total = add(ki + 1, item, 1)
    local parts = {}
    for j = 1, m do
      parts[j] = ARGV[ai + 3 + 2 * j] .. ':' .. add(ki + 1 + stride * j, item, ARGV[ai + 4 + 2 * j])
    end
    counted = counted or n_stats > 0
    for j = 1, n_stats do
      redis.call('HINCRBY', KEYS[3], ARGV[ai + 4 + 2 * m + j], 1)
    end
    flags[#flags + 1] = 1
    local clusters = table.concat(parts, ',')
    tokens[#tokens + 1] = table.concat({gen, kind, stamp, total, clusters, item}, '|')
  else
    flags[#flags + 1] = 0
  end
  ki = ki + 1 + stride * (1 + m)
  ai = ai + 5 + 2 * m + n_stats
end
if counted then redis.call('HSETNX', KEYS[3], 'since', ARGV[3]) end
if #tokens > 0 then
  local version = redis.call('INCR', KEYS[1])
  redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*',
             'v', version, 'd', table.concat(tokens, '\n'))
end
return flags
