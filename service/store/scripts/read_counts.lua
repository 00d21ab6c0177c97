-- Read one count shard at one instant (a script is atomic), so its counts and the change
-- stream position they correspond to agree; writes nothing.
-- KEYS[1] arms version, KEYS[2] changes stream, KEYS[3] decay-since, then count hashes.
-- Returns {version, last stream id, decay-since, server time {s, us}, then each hash as a
-- flat field, value list}; false where a key is missing.
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local reply = {
  redis.call('GET', KEYS[1]),
  last[1] and last[1][1] or false,
  redis.call('GET', KEYS[3]),
  redis.call('TIME'),
}
for i = 4, #KEYS do
  reply[#reply + 1] = redis.call('HGETALL', KEYS[i])
end
return reply
