/**
 * Administration of the Redis store (Driver.admin): stats, retention (trim) and ping. No housekeeping:
 * dedup markers and liveness records expire by themselves. health() is added by pressure.ts.
 */
import type { TopicStats } from '../../bus/contract.js';
import type { DriverAdmin } from '../../bus/driver.js';
import { execAll, type RedisStore } from './client.js';
import { redisStats } from './stats.js';

export class Admin implements DriverAdmin {
  health?: DriverAdmin['health'];

  constructor(
    private readonly s: RedisStore,
    /** Every known topic (Streams.topics): the ones stats are counted for. */
    private readonly topics: () => Promise<string[]>,
    /** A topic dropped (dropTopic): the driver's lists of topics forget it now. */
    private readonly dropped: (topic: string) => void = () => {},
  ) {}

  /**
   * Driver.admin.dropTopic: the stream and its companions (dead letters and their counts, the
   * group's retry stream, due sets), the group's start and liveness set, and the topic's entries in
   * the topics and published sets (the removals counter raised, so every bus' topic list sees the
   * change: ListedSet). The names go first, the keys after: a late reply landing in between makes
   * the topic again with its name (Streams.append), and the sweep finds it there; the other way
   * round its stream could outlive every list naming it. Each key alone (a cluster spreads them
   * over slots); a key already gone is no error.
   */
  async dropTopic(topic: string): Promise<boolean> {
    const { keys } = this.s;
    const names = this.s.batch();
    names.srem(keys.topics, topic);
    names.incr(keys.topicsRemoved);
    names.srem(keys.published, topic);
    names.hdel(keys.groups, topic);
    await execAll(names);
    const b = this.s.batch();
    b.del(keys.stream(topic));
    for (const key of [keys.dlq(topic), keys.dlqCount(topic), keys.retry(topic, topic), keys.due(topic), keys.dueNames(topic), keys.alive(topic)]) b.del(key);
    await execAll(b);
    this.dropped(topic);
    return true;
  }

  async stats(): Promise<TopicStats[]> {
    return redisStats(this.s, await this.topics());
  }

  /** Driver.admin.trim: retention, when set, with XTRIM MAXLEN and MINID. */
  async trim(retention: { maxLen: number; maxAgeMs: number } | null, exact: boolean): Promise<number> {
    if (retention === null) return 0;
    const { cmd, keys } = this.s;
    const how = exact ? '=' : '~';
    const xtrim = (key: string, ...args: (string | number)[]) => cmd.call('XTRIM', key, ...args) as Promise<number>;
    let removed = 0;
    // Only topics this deployment publishes to. A stream agentbus merely reads (found under the
    // prefix, or subscribed to: `prefix: ''` consumes other programs' streams) belongs to whoever
    // writes it, and retention is not ours to apply to it. The published set is newer than the topics
    // set: a topic published before it existed is trimmed again once it is published again.
    for (const type of await cmd.smembers(keys.published)) {
      const key = keys.stream(type);
      if (retention.maxLen < Number.MAX_SAFE_INTEGER) removed += await xtrim(key, 'MAXLEN', how, retention.maxLen);
      if (retention.maxAgeMs < Number.MAX_SAFE_INTEGER) removed += await xtrim(key, 'MINID', how, `${Date.now() - retention.maxAgeMs}-0`);
    }
    return removed;
  }

  async ping(): Promise<void> {
    await this.s.cmd.ping();
  }
}
