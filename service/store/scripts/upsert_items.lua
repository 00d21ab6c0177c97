-- Upsert items atomically: check the shared dimension first, then write every item.
-- KEYS: item meta, item embeddings, catalog info. ARGV[1]: the items' dimension (0: no
-- embedding among them); then per item: item_id, meta JSON, embedding bytes ('' = none).
-- Returns {1, dim} when written, {0, the catalog's dim} when the dimension differs.
local dim = tonumber(redis.call('HGET', KEYS[3], 'dim') or '0')
local new_dim = tonumber(ARGV[1])
if new_dim > 0 then
  if dim > 0 and dim ~= new_dim then
    return {0, dim}
  end
  if dim == 0 then redis.call('HSET', KEYS[3], 'dim', new_dim) end
end
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[i + 2] == '' then
    redis.call('HDEL', KEYS[2], ARGV[i])
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  end
end
redis.call('HINCRBY', KEYS[3], 'version', 1)
return {1, new_dim}
