-- Users' shares of a batch: seen decay, click history and last click per item (for
-- attributing conversions), deduped per user. KEYS: each user's state, seen, clicks,
-- events, lastclick, user after user. ARGV: now, half_life_s, history_n, retention_s,
-- user_ttl_s, events_max, items_max, then per user (in KEYS' order) the number of its
-- events and as many (event_id, type, item_id, rec_id or '', at) quintuples in time order,
-- impressions before clicks at equal times. Returns each user's clicks applied. One call
-- for many users saves a script call per user (on a single Redis a batch is one call; in
-- Redis Cluster, where a user's keys are their own hash tag, one call per slot). `at` is when the event happened: now for live
-- feedback, the event's own time for an imported past, so seen counts decay from then.
-- The dedupe set keeps now: an event_id is remembered retention_s from when it was
-- recorded.
-- Seen values are 'faded|updated_at|unclicked' (unclicked impressions since the last
-- click, fading with half_life for the fixed decay, and not fading for the learned one) and
-- last clicks 'clicked_at|rec_id', as codecs.encode_seen and codecs.encode_last_click write
-- them.
local now = tonumber(ARGV[1])
local half_life = tonumber(ARGV[2])
local history_n = tonumber(ARGV[3])
local retention = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local events_max = tonumber(ARGV[6])
local items_max = tonumber(ARGV[7])
local function parts(value)
  local sep = string.find(value, '|', 1, true)
  return tonumber(string.sub(value, 1, sep - 1)), tonumber(string.sub(value, sep + 1))
end
-- a seen value's faded count, time and plain count; values of earlier releases
-- ('faded|updated_at') count their faded one rounded up, at least 1 (codecs.legacy_unclicked)
local function seen_parts(value)
  local a = string.find(value, '|', 1, true)
  local b = string.find(value, '|', a + 1, true)
  local n = tonumber(string.sub(value, 1, a - 1))
  if not b then return n, tonumber(string.sub(value, a + 1)), math.max(1, math.ceil(n)) end
  return n, tonumber(string.sub(value, a + 1, b - 1)), tonumber(string.sub(value, b + 1))
end
-- a faded count as of updated, decayed to time t: how much the item is penalised
local function faded(n, updated, t)
  return n * math.pow(0.5, math.max(t - updated, 0) / half_life)
end
local function unclicked(value, t)
  local n, updated = seen_parts(value)
  return faded(n, updated, t)
end
-- One user's events ARGV[first..last]; KEYS is this user's five keys.
local function record(KEYS, first, last)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - retention)
  local clicked = 0
  for i = first, last, 5 do
    local event_id, kind, item, rec = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local at = tonumber(ARGV[i + 4])
    if redis.call('ZADD', KEYS[4], 'NX', now, event_id) == 1 then
      if kind == 'conversion' then
        -- a purchase changes neither what the user has seen nor their taste history
      elseif kind == 'impression' then
        local n, count = 0, 0
        local old = redis.call('HGET', KEYS[2], item)
        if old then
          local f, updated, c = seen_parts(old)
          n, count = faded(f, updated, at), c
        end
        redis.call('HSET', KEYS[2], item, string.format('%.6f|%.3f|%d', n + 1, at, count + 1))
      else
        redis.call('HDEL', KEYS[2], item)
        redis.call('LPUSH', KEYS[3], item)
        redis.call('HSET', KEYS[5], item, string.format('%.3f|%s', at, rec))
        clicked = clicked + 1
      end
    end
  end
  if clicked > 0 then
    redis.call('LTRIM', KEYS[3], 0, history_n - 1)
    redis.call('HINCRBY', KEYS[1], 'hist', clicked)
  end
  -- Bounds on what one user keeps, whatever their rate: the newest events_max event ids,
  -- and items_max items in each item hash. A hash past its bound drops its lowest-weight
  -- entries (least penalised seen items now, oldest last clicks) down to 90% of the bound
  -- at once, so the sort runs once per items_max / 10 new items rather than on every write.
  local excess = redis.call('ZCARD', KEYS[4]) - events_max
  if excess > 0 then redis.call('ZREMRANGEBYRANK', KEYS[4], 0, excess - 1) end
  local function trim(key, weight)
    if redis.call('HLEN', key) <= items_max then return end
    local flat = redis.call('HGETALL', key)
    local entries = {}
    for j = 1, #flat, 2 do entries[#entries + 1] = {flat[j], weight(flat[j + 1])} end
    table.sort(entries, function(x, y)
      if x[2] ~= y[2] then return x[2] < y[2] end
      return x[1] < y[1]
    end)
    local drop = #entries - math.floor(items_max * 0.9)
    for j = 1, drop, 1000 do
      local chunk = {}
      for m = j, math.min(j + 999, drop) do chunk[#chunk + 1] = entries[m][1] end
      redis.call('HDEL', key, unpack(chunk))
    end
  end
  trim(KEYS[2], function(value) return unclicked(value, now) end)
  -- Last clicks grow only with clicks.
  if clicked > 0 then trim(KEYS[5], function(value) return (parts(value)) end) end
  -- A user's keys live user_ttl_s past their last event. Seen and events change with every
  -- call; state, clicks and last clicks only with clicks (or the membership cache), so they
  -- are refreshed with a click, or once the clicks list has run down by a hundredth of the
  -- TTL (-2: a user who never clicked has none of the three): 3 commands instead of 5 for
  -- the impressions that are most of the traffic, at most 1% less life for those keys.
  local clicks_ttl = redis.call('TTL', KEYS[3])
  if clicked > 0 or (clicks_ttl ~= -2 and clicks_ttl < ttl - math.floor(ttl / 100)) then
    for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
  else
    redis.call('EXPIRE', KEYS[2], ttl)
    redis.call('EXPIRE', KEYS[4], ttl)
  end
  return clicked
end
local applied = {}
local count_at = 8
for base = 0, #KEYS - 1, 5 do
  local n = tonumber(ARGV[count_at])
  local user = {KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4], KEYS[base + 5]}
  applied[#applied + 1] = record(user, count_at + 1, count_at + 5 * n)
  count_at = count_at + 1 + 5 * n
end
return applied
