/**
 * Consumer liveness on Redis: a heartbeat per consumer in a sorted set per group (XINFO's idle time
 * is no liveness signal: Redis 7.0 does not refresh it on an empty blocking read), and removal of
 * dead consumers (not live, holding nothing, idle past claimIdleMs), which SIGKILLed hosts leave.
 */
import { CONSUMER_ALIVE_MS } from '../../bus/driver.js';
import { execReplies as run, ok, pairs, serverNow, type RedisStore } from './client.js';
import { dropConsumer, heartbeat } from './scripts/liveness.js';

/** A liveness set member is dropped after this long without a heartbeat. */
const ALIVE_KEEP_MS = 3_600_000;
/** How often one driver looks for dead consumers of a group it reads. */
export const SWEEP_EVERY_MS = 5000;
/** Stream keys one sweep looks at; a group reading more is covered over successive sweeps. */
const SWEEP_KEYS = 256;

export class Liveness {
  private readonly nextSweep = new Map<string, number>();
  private readonly sweepFrom = new Map<string, number>();

  constructor(private readonly s: RedisStore) {}

  async heartbeat(group: string, consumer: string): Promise<void> {
    await heartbeat.call(this.s.cmd, this.s.keys.alive(group), consumer, ALIVE_KEEP_MS);
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
    for (const [key, consumer] of candidates) if (dead.has(consumer)) dropConsumer.send(drop, key, group, consumer, minIdleMs);
    await run(drop);
  }
}
