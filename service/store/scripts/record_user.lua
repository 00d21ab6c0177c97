-- One user's share of a batch: seen decay, click history and last click per item (for
-- attributing conversions), deduped per user. KEYS: state, seen, clicks, events,
-- lastclick. ARGV: now, half_life_s, history_n, retention_s, user_ttl_s, then
-- (event_id, type, item_id, rec_id or '', at) quintuples in time order, impressions before
-- clicks at equal times. `at` is when the event happened: now for live feedback, the
-- event's own time for an imported past, so seen counts decay from then. The dedupe set
-- keeps now: an event_id is remembered retention_s from when it was recorded.
-- Seen values are 'unclicked|updated_at' and last clicks 'clicked_at|rec_id', as
-- codecs.encode_seen and codecs.encode_last_click write them.
local now = tonumber(ARGV[1])
local half_life = tonumber(ARGV[2])
local history_n = tonumber(ARGV[3])
local retention = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - retention)
local clicked = 0
for i = 6, #ARGV, 5 do
  local event_id, kind, item, rec = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local at = tonumber(ARGV[i + 4])
  if redis.call('ZADD', KEYS[4], 'NX', now, event_id) == 1 then
    if kind == 'conversion' then
      -- a purchase changes neither what the user has seen nor their taste history
    elseif kind == 'impression' then
      local n = 0
      local old = redis.call('HGET', KEYS[2], item)
      if old then
        local sep = string.find(old, '|', 1, true)
        local t = tonumber(string.sub(old, sep + 1))
        n = tonumber(string.sub(old, 1, sep - 1)) * math.pow(0.5, math.max(at - t, 0) / half_life)
      end
      redis.call('HSET', KEYS[2], item, string.format('%.6f|%.3f', n + 1, at))
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
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
return clicked
