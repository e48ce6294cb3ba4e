import type { DeadLetter, TopicStats } from '../../bus/contract.js';
import { CONSUMER_ALIVE_MS } from '../../bus/driver.js';
import type { Commands, Keys, Sender } from './driver.js';

/**
 * When XINFO's lag cannot be trusted (Redis 6.2 has none; 7.x loses track after deletions or an
 * AOF reload), the entries after the group's cursor are counted on the server, up to this many: a
 * lag of exactly LAG_RECOUNT_CAP means "at least that".
 */
export const LAG_RECOUNT_CAP = 10_000;
/** Dead letters counted per Lua call when a topic's counts are rebuilt (a few ms of server time each). */
const DLQ_RECOUNT_CHUNK = 10_000;
/** A liveness set member is dropped after this long without a heartbeat. */
const ALIVE_KEEP_MS = 3_600_000;
/** How often one driver looks for dead consumers of a group it reads. */
export const SWEEP_EVERY_MS = 5000;
/** Stream keys one sweep looks at; a group reading more is covered over successive sweeps. */
const SWEEP_KEYS = 256;

/** What the stats, dead-letter listing and liveness code needs from the driver. */
export interface Store {
  cmd: Commands;
  keys: Keys;
  /** A pipeline on one Redis, a batch of routed commands on a cluster. */
  batch(): Sender;
}

type Reply = [Error | null, unknown];
const run = async (b: Sender): Promise<Reply[]> => ((await (b.exec as () => Promise<Reply[] | null>)()) ?? []);
const ok = <T>(r: Reply, fallback: T): T => (r[0] ? fallback : (r[1] as T));

/** Stream ids compare as (ms, seq) pairs of integers of up to 64 bits. */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm) || BigInt(as) - BigInt(bs);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** Flat [k, v, k, v] to an object. */
function pairs(list: unknown[], from = 0): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = from; i + 1 < list.length; i += 2) o[String(list[i])] = list[i + 1];
  return o;
}

/**
 * Per topic: length; per group: pending (its own and its retry stream's), lag (entries after its
 * cursor), live consumers (heartbeats), dead letters (the per-group count hash). A fixed number of
 * pipelined commands per topic and per (topic, group), each answering from Redis' own counters.
 */
export async function redisStats(s: Store, topics: string[]): Promise<TopicStats[]> {
  const b1 = s.batch();
  for (const t of topics) {
    const key = s.keys.stream(t);
    b1.agentbusStreamEnds(key);
    b1.xinfo('GROUPS', key);
    b1.agentbusDlqCounts(s.keys.dlq(t), s.keys.dlqCount(t));
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
      if (lag === null) b2.agentbusCountAfter(s.keys.stream(t.type), String(g['last-delivered-id']), LAG_RECOUNT_CAP);
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
async function liveCounts(s: Store, groups: string[]): Promise<Map<string, number>> {
  if (groups.length === 0) return new Map();
  const now = await serverNow(s);
  const b = s.batch();
  for (const g of groups) b.zcount(s.keys.alive(g), now - CONSUMER_ALIVE_MS, '+inf');
  const r = await run(b);
  return new Map(groups.map((g, i) => [g, Number(ok(r[i], 0))]));
}

async function serverNow(s: Store): Promise<number> {
  const [sec, usec] = await s.cmd.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

/**
 * Dead letters per group of one topic, from the count hash kept by the scripts that add and remove
 * them. The hash is trusted when its counts add up to the stream's length; otherwise (dead letters
 * written before the counts existed, or removed by another program) they are recounted on the
 * server chunk by chunk and stored, unless the stream changed meanwhile (then the next call tries).
 */
async function deadLetterCounts(s: Store, type: string, reply: unknown[]): Promise<Map<string, number>> {
  const length = Number(reply[0]);
  const last = String(reply[1]);
  const hash = pairs(reply, 2);
  const counts = new Map(Object.entries(hash).map(([g, n]) => [g, Number(n)]));
  if ([...counts.values()].reduce((a, n) => a + n, 0) === length) return counts;
  const dlq = s.keys.dlq(type);
  const fresh = new Map<string, number>();
  for (let from = '-'; last !== '' && from !== last; ) {
    const chunk = (await s.cmd.agentbusDlqCountChunk(dlq, from, last, DLQ_RECOUNT_CHUNK)) as unknown[];
    if (chunk[0] === '') break;
    from = String(chunk[0]);
    for (let i = 1; i + 1 < chunk.length; i += 2) fresh.set(String(chunk[i]), (fresh.get(String(chunk[i])) ?? 0) + Number(chunk[i + 1]));
  }
  await s.cmd.agentbusDlqCountSet(dlq, s.keys.dlqCount(type), length, last, ...[...fresh].flat());
  return fresh;
}

/**
 * Dead letters, oldest first (by when they were dead-lettered: their entry id), at most `limit`:
 * every topic's stream is read from its start `limit` entries at a time, further only while a group
 * filter leaves fewer than `limit` matches, so a call reads about `limit` entries per stream.
 */
export async function listDeadLetters(
  s: Store,
  types: string[],
  f: { group?: string; limit: number },
  decode: (type: string, id: string, fields: string[]) => DeadLetter,
): Promise<DeadLetter[]> {
  type Entry = [string, string[] | null];
  const found: Array<{ type: string; id: string; fields: string[] }> = [];
  let open = types.map((type) => ({ type, after: '-', matched: 0 }));
  while (open.length > 0) {
    const b = s.batch();
    for (const o of open) b.xrange(s.keys.dlq(o.type), o.after === '-' ? '-' : `(${o.after}`, '+', 'COUNT', f.limit);
    const replies = await run(b);
    const next: typeof open = [];
    open.forEach((o, i) => {
      const entries = ok(replies[i], [] as Entry[]);
      for (const [id, fields] of entries) {
        const group = pairs(fields ?? []).group;
        if (f.group !== undefined && group !== f.group) continue;
        found.push({ type: o.type, id, fields: fields ?? [] });
        o.matched++;
      }
      if (entries.length === f.limit && o.matched < f.limit) next.push({ ...o, after: entries[entries.length - 1][0] });
    });
    open = next;
  }
  found.sort((a, b) => compareIds(a.id, b.id) || a.type.localeCompare(b.type));
  return found.slice(0, f.limit).map((e) => decode(e.type, e.id, e.fields));
}

/**
 * Consumer liveness on Redis: a heartbeat per consumer in a sorted set per group (XINFO's idle time
 * is no liveness signal: Redis 7.0 does not refresh it on an empty blocking read), and removal of
 * dead consumers (not live, holding nothing, idle past claimIdleMs), which SIGKILLed hosts leave.
 */
export class Liveness {
  private readonly nextSweep = new Map<string, number>();
  private readonly sweepFrom = new Map<string, number>();

  constructor(private readonly s: Store) {}

  async heartbeat(group: string, consumer: string): Promise<void> {
    await this.s.cmd.agentbusAlive(this.s.keys.alive(group), consumer, ALIVE_KEEP_MS);
  }

  async forget(group: string, consumer: string): Promise<void> {
    await this.s.cmd.zrem(this.s.keys.alive(group), consumer);
  }

  /** At most every SWEEP_EVERY_MS per group: removes dead consumers from the group on `streamKeys`; errors are left for the next sweep. */
  sweepSoon(group: string, self: string, streamKeys: string[], minIdleMs: number): void {
    const now = Date.now();
    if ((this.nextSweep.get(group) ?? 0) > now) return;
    this.nextSweep.set(group, now + SWEEP_EVERY_MS);
    const from = (this.sweepFrom.get(group) ?? 0) % streamKeys.length;
    this.sweepFrom.set(group, from + SWEEP_KEYS);
    this.sweep(group, self, streamKeys.slice(from, from + SWEEP_KEYS), minIdleMs).catch(() => {});
  }

  private async sweep(group: string, self: string, streamKeys: string[], minIdleMs: number): Promise<void> {
    const b = this.s.batch();
    for (const key of streamKeys) b.xinfo('CONSUMERS', key, group);
    const replies = await run(b);
    const candidates: Array<[key: string, consumer: string]> = [];
    replies.forEach((r, i) => {
      for (const c of ok(r, [] as unknown[][])) {
        const f = pairs(c);
        if (f.name !== self && Number(f.pending) === 0 && Number(f.idle) >= minIdleMs) candidates.push([streamKeys[i], String(f.name)]);
      }
    });
    if (candidates.length === 0) return;
    const names = [...new Set(candidates.map(([, c]) => c))];
    const now = await serverNow(this.s);
    const scores = await run(names.reduce((bb, n) => (bb.zscore(this.s.keys.alive(group), n), bb), this.s.batch()));
    const dead = new Set(names.filter((_, i) => {
      const seen = ok(scores[i], null as string | null);
      return seen === null || Number(seen) < now - CONSUMER_ALIVE_MS;
    }));
    const drop = this.s.batch();
    for (const [key, consumer] of candidates) if (dead.has(consumer)) drop.agentbusDropConsumer(key, group, consumer, minIdleMs);
    await run(drop);
  }
}
