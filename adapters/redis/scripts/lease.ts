/**
 * The lease scripts: taking deliveries whose lease ran out, and renewing, releasing or counting an
 * attempt of deliveries a consumer holds, each one script with one job. Each touches one stream
 * key, so it runs on one Redis Cluster slot.
 */
import { script } from './script.js';

/** An entry as XAUTOCLAIM and XREADGROUP return it; fields null when deleted while pending (Redis 6.2). */
export type Entry = [id: string, fields: string[] | null];

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
export const claimExpired = script({
  name: 'agentbusClaim',
  numberOfKeys: 1,
  lua: `
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local counts = {}
for i, e in ipairs(r[2]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  counts[i] = p[1] and p[1][4] or 0
end
return {r[1], r[2], r[3] or {}, counts}`,
  argv: (stream: string, group: string, consumer: string, minIdleMs: number, cursor: string, count: number) => [stream, group, consumer, minIdleMs, cursor, count],
  reply: (r) => r as [next: string, entries: Entry[], deleted: string[], counts: number[]],
});

/**
 * The Lua shared by the three scripts below: XCLAIM (JUSTID, so the delivery count does not grow)
 * of each id from ARGV[first] on that is pending and still owned by the consumer ARGV[2], with
 * `options` added; an entry another consumer claimed meanwhile is left alone, so a late call never
 * steals it back. KEYS[1] stream, ARGV[1] group. Returns how many entries were touched.
 */
const whileOwned = (first: number, options: string) => `
local n = 0
for i = ${first}, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i]${options}, 'JUSTID')
    n = n + 1
  end
end
return n`;

/**
 * Renew the lease of pending entries still owned by a consumer: their idle time goes back to 0.
 * KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids. Returns how many were renewed.
 */
export const renewLease = script({
  name: 'agentbusRenewLease',
  numberOfKeys: 1,
  lua: whileOwned(3, ''),
  argv: (stream: string, group: string, consumer: string, ids: string[]) => [stream, group, consumer, ids],
  reply: Number,
});

/**
 * Give an entry a consumer holds back to its group now: its idle time is set far past any claim
 * threshold, so the next XAUTOCLAIM takes it, and its delivery count to the attempts made so far.
 * KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] idle to set (ms), ARGV[4] delivery
 * count to set, ARGV[5] entry id. Returns 1 when released, 0 when the consumer no longer held it.
 */
export const releaseLease = script({
  name: 'agentbusReleaseLease',
  numberOfKeys: 1,
  lua: whileOwned(5, ", 'IDLE', ARGV[3], 'RETRYCOUNT', ARGV[4]"),
  argv: (stream: string, group: string, consumer: string, idleMs: number, attempts: number, id: string) => [stream, group, consumer, idleMs, attempts, id],
  reply: Number,
});

/**
 * Set the delivery count (the attempt count) of an entry its owner keeps and runs again; its lease
 * is renewed with it (XCLAIM sets idle to 0).
 * KEYS[1] stream; ARGV[1] group, ARGV[2] owner, ARGV[3] delivery count to set, ARGV[4] entry id.
 * Returns 1 when set, 0 when `owner` no longer holds it.
 */
export const setAttempts = script({
  name: 'agentbusSetAttempts',
  numberOfKeys: 1,
  lua: whileOwned(4, ", 'RETRYCOUNT', ARGV[3]"),
  argv: (stream: string, group: string, owner: string, attempts: number, id: string) => [stream, group, owner, attempts, id],
  reply: Number,
});
