/**
 * Consumer groups on Redis: a group per stream (and per retry stream), its start recorded once for
 * the whole deployment so a topic met later starts at the same point, and moving its cursor (seek).
 */
import type { StoreBound } from '../../bus/driver.js';
import { NotFoundError } from '../../bus/errors.js';
import { execReplies, isRedisError, serverNow, type RedisStore } from './client.js';
import { before, checkId, MAX_SEQ } from './keys.js';

export class Groups {
  constructor(private readonly s: RedisStore) {}

  /** Driver.createGroup: see there. */
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
}
