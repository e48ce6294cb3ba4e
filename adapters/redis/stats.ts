/**
 * Stats of the Redis store (bus.stats()): per topic its length, per group its pending, lag, live
 * consumers and dead letters, from Redis' own counters in a fixed number of pipelined commands.
 */
import type { TopicStats } from '../../bus/contract.js';
import { CONSUMER_ALIVE_MS } from '../../bus/driver.js';
import { execReplies as run, ok, pairs, serverNow, type RedisStore } from './client.js';
import { compareIds } from './keys.js';
import { countDeadLetterChunk, deadLetterCounts as dlqCounts, storeDeadLetterCounts } from './scripts/dead-letters.js';
import { countAfter, streamEnds } from './scripts/stats.js';

/**
 * When XINFO's lag cannot be trusted (Redis 6.2 has none; 7.x loses track after deletions or an
 * AOF reload), the entries after the group's cursor are counted on the server, up to this many: a
 * lag of exactly LAG_RECOUNT_CAP means "at least that".
 */
export const LAG_RECOUNT_CAP = 10_000;
/** Dead letters counted per Lua call when a topic's counts are rebuilt (a few ms of server time each). */
const DLQ_RECOUNT_CHUNK = 10_000;

/**
 * Per topic: length; per group: pending (its own and its retry stream's), lag (entries after its
 * cursor), live consumers (heartbeats), dead letters (the per-group count hash). A fixed number of
 * pipelined commands per topic and per (topic, group), each answering from Redis' own counters.
 */
export async function redisStats(s: RedisStore, topics: string[]): Promise<TopicStats[]> {
  const b1 = s.batch();
  for (const t of topics) {
    const key = s.keys.stream(t);
    streamEnds.send(b1, key);
    b1.xinfo('GROUPS', key);
    dlqCounts.send(b1, s.keys.dlq(t), s.keys.dlqCount(t));
  }
  const r1 = await run(b1);
  const perTopic = topics.map((type, i) => {
    const [length, first, last] = ok(r1[i * 3], [0, '', '']) as [number, string, string];
    const groups = ok(r1[i * 3 + 1], [] as unknown[][]).map((g) => pairs(g));
    const counts = ok(r1[i * 3 + 2], [0, ''] as unknown[]);
    return { type, length: Number(length), first, last, groups, counts };
  });

  const names = [...new Set(perTopic.flatMap((t) => t.groups.map((g) => String(g.name))))];
  const [alive, dead] = await Promise.all([liveCounts(s, names), Promise.all(perTopic.map((t) => deadLetterCounts(s, t.type, t.counts)))]);

  // Pending in each retry stream, and a recount of lag where XINFO's cannot be trusted.
  const b2 = s.batch();
  const lags: Array<number | null> = [];
  for (const t of perTopic) {
    for (const g of t.groups) {
      const name = String(g.name);
      b2.xpending(s.keys.retry(t.type, name), name);
      const lag = knownLag(t, g);
      lags.push(lag);
      if (lag === null) countAfter.send(b2, s.keys.stream(t.type), String(g['last-delivered-id']), LAG_RECOUNT_CAP);
    }
  }
  const r2 = await run(b2);
  let at = 0;
  let li = 0;
  return perTopic.map((t, ti) => ({
    type: t.type,
    length: t.length,
    groups: t.groups
      .map((g) => {
        const group = String(g.name);
        const retryPending = Number(ok(r2[at++], [0] as unknown[])[0] ?? 0);
        const lag = lags[li++] ?? Number(ok(r2[at++], 0));
        return { group, pending: Number(g.pending) + retryPending, lag, consumers: alive.get(group) ?? 0, deadLetters: dead[ti].get(group) ?? 0 };
      })
      .sort((a, b) => a.group.localeCompare(b.group)),
  }));
}

/**
 * Lag from what Redis already knows, or null when it must be recounted. Nothing after the cursor
 * (the newest entry is at or before it) is 0 whatever XINFO says: a reloaded AOF can leave the
 * entries-read counter behind, reporting a lag with nothing left to read. A cursor before the
 * oldest entry means every entry is still to deliver. Otherwise XINFO's lag is used when present
 * and within the stream's length.
 */
function knownLag(t: { length: number; first: string; last: string }, g: Record<string, unknown>): number | null {
  const cursor = String(g['last-delivered-id']);
  if (t.length === 0 || t.last === '' || compareIds(t.last, cursor) <= 0) return 0;
  if (compareIds(t.first, cursor) > 0) return t.length;
  const lag = g.lag === null || g.lag === undefined ? null : Number(g.lag);
  return lag !== null && lag > 0 && lag <= t.length ? lag : null;
}

/** Consumers of each group whose heartbeat is younger than CONSUMER_ALIVE_MS, by the server's clock. */
async function liveCounts(s: RedisStore, groups: string[]): Promise<Map<string, number>> {
  if (groups.length === 0) return new Map();
  const now = await serverNow(s);
  const b = s.batch();
  for (const g of groups) b.zcount(s.keys.alive(g), now - CONSUMER_ALIVE_MS, '+inf');
  const r = await run(b);
  return new Map(groups.map((g, i) => [g, Number(ok(r[i], 0))]));
}

/**
 * Dead letters per group of one topic, from the count hash kept by the scripts that add and remove
 * them. The hash is trusted when its counts add up to the stream's length; otherwise (dead letters
 * written before the counts existed, or removed by another program) they are recounted on the
 * server chunk by chunk and stored, unless the stream changed meanwhile (then the next call tries).
 */
async function deadLetterCounts(s: RedisStore, type: string, reply: unknown[]): Promise<Map<string, number>> {
  const length = Number(reply[0]);
  const last = String(reply[1]);
  const hash = pairs(reply, 2);
  const counts = new Map(Object.entries(hash).map(([g, n]) => [g, Number(n)]));
  if ([...counts.values()].reduce((a, n) => a + n, 0) === length) return counts;
  const dlq = s.keys.dlq(type);
  const fresh = new Map<string, number>();
  for (let from = '-'; last !== '' && from !== last; ) {
    const chunk = await countDeadLetterChunk.call(s.cmd, dlq, from, last, DLQ_RECOUNT_CHUNK);
    if (chunk[0] === '') break;
    from = String(chunk[0]);
    for (let i = 1; i + 1 < chunk.length; i += 2) fresh.set(String(chunk[i]), (fresh.get(String(chunk[i])) ?? 0) + Number(chunk[i + 1]));
  }
  await storeDeadLetterCounts.call(s.cmd, dlq, s.keys.dlqCount(type), length, last, fresh);
  return fresh;
}

