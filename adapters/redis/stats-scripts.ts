/**
 * Lua scripts behind stats, dead-letter counts and consumer liveness (registered with the others in
 * index.ts). Each touches keys of one hash tag only, so each runs on one Redis Cluster slot.
 */
export const statsScripts = {
  /**
   * Remove one dead letter, keeping the per-group count with it.
   * KEYS[1] dead-letter stream, KEYS[2] its count hash `{stream}:dlqcount`; ARGV[1] entry id
   * Returns 1 when removed, 0 when it was not there.
   */
  agentbusPurgeDeadLetter: {
    numberOfKeys: 2,
    lua: `
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f, group = e[1][2], ''
for i = 1, #f, 2 do if f[i] == 'group' then group = f[i + 1] end end
redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], group, -1) <= 0 then redis.call('HDEL', KEYS[2], group) end
return 1`,
  },

  /**
   * The dead-letter stream's length and last id with the count hash, read together so they agree.
   * KEYS[1] dead-letter stream, KEYS[2] count hash. Returns { length, last id or '', hash fields... }.
   */
  agentbusDlqCounts: {
    numberOfKeys: 2,
    lua: `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local out = { redis.call('XLEN', KEYS[1]), last[1] and last[1][1] or '' }
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do table.insert(out, v) end
return out`,
  },

  /**
   * Counts dead letters per group over one chunk, on the server (no bodies cross the network).
   * KEYS[1] dead-letter stream; ARGV[1] start (exclusive, '-' for the beginning), ARGV[2] end
   * (inclusive), ARGV[3] chunk size. Returns { last id read or '', group, n, group, n, ... }.
   */
  agentbusDlqCountChunk: {
    numberOfKeys: 1,
    lua: `
local start = ARGV[1] == '-' and '-' or '(' .. ARGV[1]
local es = redis.call('XRANGE', KEYS[1], start, ARGV[2], 'COUNT', tonumber(ARGV[3]))
local counts, order = {}, {}
for _, e in ipairs(es) do
  local f, group = e[2], ''
  for i = 1, #f, 2 do if f[i] == 'group' then group = f[i + 1] end end
  if counts[group] == nil then counts[group] = 0; table.insert(order, group) end
  counts[group] = counts[group] + 1
end
local out = { #es > 0 and es[#es][1] or '' }
for _, g in ipairs(order) do table.insert(out, g); table.insert(out, counts[g]) end
return out`,
  },

  /**
   * Replaces the count hash with a recount, unless the stream changed since the recount began.
   * KEYS[1] dead-letter stream, KEYS[2] count hash; ARGV[1] length and ARGV[2] last id seen then,
   * ARGV[3..] group, n pairs. Returns 1 when stored, 0 when the stream moved meanwhile.
   */
  agentbusDlqCountSet: {
    numberOfKeys: 2,
    lua: `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if redis.call('XLEN', KEYS[1]) ~= tonumber(ARGV[1]) or (last[1] and last[1][1] or '') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > 0 then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 1`,
  },

  /**
   * A stream's length and first and last ids, without any entry's fields.
   * KEYS[1] stream. Returns { length, first id or '', last id or '' }.
   */
  agentbusStreamEnds: {
    numberOfKeys: 1,
    lua: `
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return { redis.call('XLEN', KEYS[1]), first[1] and first[1][1] or '', last[1] and last[1][1] or '' }`,
  },

  /**
   * How many entries follow an id, counting at most a cap (a bounded recount of lag).
   * KEYS[1] stream; ARGV[1] id (exclusive), ARGV[2] cap.
   */
  agentbusCountAfter: {
    numberOfKeys: 1,
    lua: `return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))`,
  },

  /**
   * A consumer's heartbeat, stamped with the server's clock (hosts' clocks may disagree).
   * KEYS[1] the group's liveness set `<prefix>{agentbus}:alive:<group>` (consumer scored by last beat)
   * ARGV[1] consumer, ARGV[2] how long a member is kept without a beat (ms)
   */
  agentbusAlive: {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return now`,
  },

  /**
   * Removes a dead consumer from a group, only if it holds nothing and has been idle at least
   * ARGV[3] ms, checked and done at once: a consumer that read meanwhile keeps what it read.
   * KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] minimum idle (ms). Returns 1 when removed.
   */
  agentbusDropConsumer: {
    numberOfKeys: 1,
    lua: `
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] == ARGV[2] then
    if tonumber(f['pending']) == 0 and tonumber(f['idle']) >= tonumber(ARGV[3]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
      return 1
    end
    return 0
  end
end
return 0`,
  },
} as const;
