-- Remove an item from the catalog; its arm counts stay. An empty catalog forgets its dim.
-- KEYS: item meta, item embeddings, catalog info. ARGV[1]: item_id. Returns 1 if it existed.
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if removed == 1 then
  redis.call('HINCRBY', KEYS[3], 'version', 1)
  if redis.call('HLEN', KEYS[1]) == 0 then redis.call('HDEL', KEYS[3], 'dim') end
end
return removed
