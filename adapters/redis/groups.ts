/**
 * Consumer groups on Redis (Driver.groups): a group per stream (and per retry stream), its start
 * recorded once for the whole deployment so a topic met later starts at the same point, moving its
 * cursor (seek), and its consumers' heartbeats and removal (through liveness.ts).
 */
import type { DriverGroups, StoreBound } from '../../bus/driver.js';
import { NotFoundError } from '../../bus/errors.js';
import { execReplies, isRedisError, serverNow, type RedisStore } from './client.js';
import { before, checkId, MAX_SEQ } from './keys.js';
import type { Liveness } from './liveness.js';

export class Groups implements DriverGroups {
  constructor(
    private readonly s: RedisStore,
    private readonly liveness: Liveness,
  ) {}

  /** Driver.groups.create: see there. */
  async create(group: string, topics: string[], from: 'latest' | 'earliest'): Promise<number> {
    const { cmd, keys } = this.s;
    let start = await cmd.hget(keys.groups, group);
    // A new latest group starts at each existing stream's newest entry ($, exact); a topic met later
    // (a pattern) starts at the group's recorded start.
    const fresh = start === null && from === 'latest';
    let created = false;
    if (start === null) {
      // Server time, not ours: a skewed client clock must not skip events published after this.
      // The start is the id just before <now>-0: an event added in this very millisecond gets
      // <now>-0 itself and must still count as new.
      const now = await serverNow(this.s);
      created = (await cmd.hsetnx(keys.groups, group, from === 'earliest' ? '0' : before(`${now}-0`))) === 1;
      start = (await cmd.hget(keys.groups, group))!;
    }
    // Skipped events are counted (XLEN, O(1)) for a group this call made at latest, on each stream
    // where its XGROUP CREATE is new (not BUSYGROUP: another program's group of that name).
    const count = created && fresh;
    const p = this.s.batch();
    for (const t of topics) {
      if (count) p.xlen(keys.stream(t));
      p.xgroup('CREATE', keys.stream(t), group, fresh ? '$' : start, 'MKSTREAM');
      p.xgroup('CREATE', keys.retry(t, group), group, '0', 'MKSTREAM');
      p.sadd(keys.topics, t);
    }
    const replies = await execReplies(p);
    for (const [err] of replies) if (err && !isRedisError(err, 'BUSYGROUP')) throw err;
    if (!count) return 0;
    let skipped = 0;
    for (let i = 0; i < replies.length; i += 4) if (replies[i + 1][0] === null) skipped += Number(replies[i][1]);
    return skipped;
  }

  async seek(group: string, topic: string, from: StoreBound | 'earliest'): Promise<void> {
    // SETID names the last entry delivered: one before the first to deliver again.
    const id = from === 'earliest' ? '0' : 'position' in from ? before(checkId(from.position, 'from')) : from.time > 0 ? `${from.time - 1}-${MAX_SEQ}` : '0';
    try {
      await this.s.cmd.xgroup('SETID', this.s.keys.stream(topic), group, id);
    } catch (err) {
      if (isRedisError(err, 'NOGROUP')) {
        throw new NotFoundError('NOT_FOUND', `group ${JSON.stringify(group)} has never subscribed to ${JSON.stringify(topic)}`);
      }
      throw err;
    }
  }

  heartbeat(group: string, consumer: string): Promise<void> {
    return this.liveness.heartbeat(group, consumer);
  }

  /** Driver.groups.idleFor: the newest score of the group's liveness set (server clock) against the server's time now. */
  async idleFor(group: string): Promise<number | null> {
    const top = await this.s.cmd.zrevrange(this.s.keys.alive(group), 0, 0, 'WITHSCORES');
    if (top.length < 2) return null;
    return Math.max(0, (await serverNow(this.s)) - Number(top[1]));
  }

  /** XGROUP DELCONSUMER on each of its keys where it holds nothing (it would drop what it holds). */
  async forget(group: string, consumer: string, topics: string[]): Promise<void> {
    const { cmd, keys } = this.s;
    await this.liveness.forget(group, consumer);
    for (const t of topics) {
      for (const key of [keys.stream(t), keys.retry(t, group)]) {
        const held = (await cmd.xpending(key, group, '-', '+', 1, consumer).catch(() => null)) as unknown[] | null;
        if (held !== null && held.length === 0) await cmd.xgroup('DELCONSUMER', key, group, consumer).catch(() => {});
      }
    }
  }
}
