/**
 * Atomic operations, one Lua script each. Every script's keys share one hash tag (the topic's
 * stream key), so each runs on one Redis Cluster slot. Registered with ioredis' defineCommand,
 * which sends EVALSHA and falls back to EVAL after a NOSCRIPT.
 */
export const scripts = {
  /**
   * Publish once per dedup window. The marker is written only once the entry exists: when XADD fails
   * (the key holds another type, the stream's last id is exhausted) the error ends the script before
   * the SET, so the caller's retry with the same id is stored, not taken for a duplicate.
   * KEYS[1] stream, KEYS[2] dedup marker `{stream}:dedup:<sha256 of [source, id]>`
   * ARGV[1] window (ms), ARGV[2..] the entry's field/value pairs, in its topic's layout (layout.ts)
   * Returns the new entry id, or nil when the marker exists (a duplicate inside the window).
   */
  agentbusPublishOnce: {
    numberOfKeys: 2,
    lua: `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return id`,
  },

  /**
   * Take deliveries whose lease ran out, with their delivery counts, in one step. Read apart, an entry
   * acknowledged between XAUTOCLAIM and XPENDING had no pending record left and was delivered again
   * as attempt 1; inside one script nothing runs in between, so every entry returned is pending,
   * owned by the claiming consumer, with its count.
   * KEYS[1] stream
   * ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle (ms), ARGV[4] cursor, ARGV[5] COUNT
   * Returns { next cursor, entries (as XAUTOCLAIM: [id, fields], fields nil when deleted on Redis 6.2),
   * ids deleted while pending (Redis 7+), the delivery count of each entry (0 when not pending) }.
   */
  agentbusClaim: {
    numberOfKeys: 1,
    lua: `
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local counts = {}
for i, e in ipairs(r[2]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  counts[i] = p[1] and p[1][4] or 0
end
return {r[1], r[2], r[3] or {}, counts}`,
  },

  /**
   * Touch the lease of pending entries still owned by a consumer; an entry another consumer claimed
   * meanwhile is left alone, so a late renewal never steals it back.
   * KEYS[1] stream
   * ARGV[1] group, ARGV[2] consumer, ARGV[3] idle to set ('' = 0, renewal; large = release now),
   * ARGV[4] delivery count to set ('' = unchanged), ARGV[5..] entry ids
   * Returns how many entries were touched.
   */
  agentbusLease: {
    numberOfKeys: 1,
    lua: `
local n = 0
for i = 5, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i]}
    if ARGV[3] ~= '' then table.insert(args, 'IDLE'); table.insert(args, ARGV[3]) end
    if ARGV[4] ~= '' then table.insert(args, 'RETRYCOUNT'); table.insert(args, ARGV[4]) end
    table.insert(args, 'JUSTID')
    redis.call(unpack(args))
    n = n + 1
  end
end
return n`,
  },

  /**
   * Move a delivery to the dead letters and acknowledge it, together, counting it for its group.
   * KEYS[1] stream the delivery came from, KEYS[2] dead-letter stream `{stream}:dlq`,
   * KEYS[3] per-group dead-letter counts `{stream}:dlqcount` (what stats read)
   * ARGV[1] group, ARGV[2] entry id, ARGV[3] reason, ARGV[4] error, ARGV[5] attempts,
   * ARGV[6] failed at (ms), ARGV[7] body (envelope JSON in any layout, or the raw fields of a malformed entry),
   * ARGV[8] the error's stack ('' = none: no `stack` field, as in entries written before it existed)
   */
  agentbusDeadLetter: {
    numberOfKeys: 3,
    lua: `
local fields = {'group', ARGV[1], 'position', ARGV[2], 'reason', ARGV[3], 'error', ARGV[4],
  'attempts', ARGV[5], 'failed_at', ARGV[6], 'body', ARGV[7]}
if ARGV[8] ~= nil and ARGV[8] ~= '' then
  table.insert(fields, 'stack')
  table.insert(fields, ARGV[8])
end
redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
return 1`,
  },

  /**
   * Hand a dead letter back to the group that failed it, through that group's retry stream.
   * KEYS[1] dead-letter stream, KEYS[2] the group's retry stream `{stream}:retry:<group>`,
   * KEYS[3] per-group dead-letter counts
   * ARGV[1] dead-letter entry id, ARGV[2] group (must be the one recorded on the dead letter)
   * The dead letter's body is an envelope as JSON whatever the layout the entry had (a malformed
   * entry's, its text): it goes back in the envelope layout, an `event` field, which only agentbus
   * reads (the retry stream is agentbus' own).
   * Returns 1 when handed back, 0 when the dead letter is gone or belongs to another group.
   */
  agentbusRetryDeadLetter: {
    numberOfKeys: 3,
    lua: `
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f = e[1][2]
local body, group
for i = 1, #f, 2 do
  if f[i] == 'body' then body = f[i + 1] elseif f[i] == 'group' then group = f[i + 1] end
end
if group ~= ARGV[2] or body == nil then return 0 end
redis.call('XADD', KEYS[2], '*', 'event', body)
redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[3], group, -1) <= 0 then redis.call('HDEL', KEYS[3], group) end
return 1`,
  },
} as const;
