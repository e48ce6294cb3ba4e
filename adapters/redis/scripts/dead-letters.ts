/**
 * The dead-letter scripts: moving a delivery to its topic's dead letters, handing one back to its
 * group, removing one, and the per-group counts kept beside them (what stats read). Each touches
 * keys of one hash tag only (the topic's stream key), so each runs on one Redis Cluster slot.
 */
import { script } from './script.js';

/**
 * Move a delivery to the dead letters and acknowledge it, together, counting it for its group.
 * KEYS[1] stream the delivery came from, KEYS[2] dead-letter stream `{stream}:dlq`,
 * KEYS[3] per-group dead-letter counts `{stream}:dlqcount` (what stats read)
 * ARGV[1] group, ARGV[2] entry id, ARGV[3] reason, ARGV[4] error, ARGV[5] attempts,
 * ARGV[6] failed at (ms), ARGV[7] body (envelope JSON in any layout, or the raw fields of a malformed entry),
 * ARGV[8] the error's stack, absent when there is none (then no `stack` field, as in entries
 * written before it existed)
 */
export const addDeadLetter = script({
  name: 'agentbusDeadLetter',
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
  argv: (
    stream: string,
    dlq: string,
    counts: string,
    f: { group: string; id: string; reason: string; error: string; attempts: number; failedAt: number; body: string; stack: string | undefined },
  ) => [stream, dlq, counts, f.group, f.id, f.reason, f.error, f.attempts, f.failedAt, f.body, ...(f.stack ? [f.stack] : [])],
  reply: Number,
});

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
export const retryDeadLetter = script({
  name: 'agentbusRetryDeadLetter',
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
  argv: (dlq: string, retry: string, counts: string, entry: string, group: string) => [dlq, retry, counts, entry, group],
  reply: Number,
});

/**
 * Remove one dead letter, keeping the per-group count with it.
 * KEYS[1] dead-letter stream, KEYS[2] its count hash `{stream}:dlqcount`; ARGV[1] entry id
 * Returns 1 when removed, 0 when it was not there.
 */
export const purgeDeadLetter = script({
  name: 'agentbusPurgeDeadLetter',
  numberOfKeys: 2,
  lua: `
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f, group = e[1][2], ''
for i = 1, #f, 2 do if f[i] == 'group' then group = f[i + 1] end end
redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], group, -1) <= 0 then redis.call('HDEL', KEYS[2], group) end
return 1`,
  argv: (dlq: string, counts: string, entry: string) => [dlq, counts, entry],
  reply: Number,
});

/**
 * The dead-letter stream's length and last id with the count hash, read together so they agree.
 * KEYS[1] dead-letter stream, KEYS[2] count hash. Returns { length, last id or '', hash fields... }.
 */
export const deadLetterCounts = script({
  name: 'agentbusDlqCounts',
  numberOfKeys: 2,
  lua: `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local out = { redis.call('XLEN', KEYS[1]), last[1] and last[1][1] or '' }
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do table.insert(out, v) end
return out`,
  argv: (dlq: string, counts: string) => [dlq, counts],
  reply: (r) => r as unknown[],
});

/**
 * Counts dead letters per group over one chunk, on the server (no bodies cross the network).
 * KEYS[1] dead-letter stream; ARGV[1] start (exclusive, '-' for the beginning), ARGV[2] end
 * (inclusive), ARGV[3] chunk size. Returns { last id read or '', group, n, group, n, ... }.
 */
export const countDeadLetterChunk = script({
  name: 'agentbusDlqCountChunk',
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
  argv: (dlq: string, after: string, upTo: string, chunk: number) => [dlq, after, upTo, chunk],
  reply: (r) => r as unknown[],
});

/**
 * Replaces the count hash with a recount, unless the stream changed since the recount began.
 * KEYS[1] dead-letter stream, KEYS[2] count hash; ARGV[1] length and ARGV[2] last id seen then,
 * ARGV[3..] group, n pairs. Returns 1 when stored, 0 when the stream moved meanwhile.
 */
export const storeDeadLetterCounts = script({
  name: 'agentbusDlqCountSet',
  numberOfKeys: 2,
  lua: `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if redis.call('XLEN', KEYS[1]) ~= tonumber(ARGV[1]) or (last[1] and last[1][1] or '') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > 0 then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 1`,
  argv: (dlq: string, counts: string, length: number, last: string, perGroup: Map<string, number>) => [dlq, counts, length, last, ...[...perGroup].flat()],
  reply: Number,
});
