/**
 * Administration of the Redis store: discovering topics (the topics set, and streams other programs
 * created under the prefix), stats, retention (trim) and forgetting a consumer that closed for good.
 */
import type { Cluster } from 'ioredis';
import type { TopicStats } from '../../bus/contract.js';
import { isType } from '../../bus/event.js';
import type { RedisStore } from './client.js';
import type { Liveness } from './liveness.js';
import { redisStats } from './stats.js';

/** How often topics() looks for streams other programs created. */
const SCAN_EVERY_MS = 10_000;

export class Admin {
  private listed: { count: number; until: number; names: string[] } = { count: -1, until: 0, names: [] };
  private scanned: { at: number; found: string[] } = { at: 0, found: [] };
  private scanning: Promise<void> | null = null;
  private merged: string[] | null = null;

  constructor(
    private readonly s: RedisStore,
    private readonly liveness: Liveness,
  ) {}

  /**
   * Known topics: those published or subscribed through agentbus (a set), plus streams under the
   * prefix that only other programs write, found by SCAN ... TYPE stream at most every SCAN_EVERY_MS
   * (a SCAN walks the whole keyspace). Pattern consumers ask every 100 ms: the set is read again
   * only when its size (SCARD, O(1)) changed, or every SCAN_EVERY_MS; one SCAN runs at a time.
   */
  async topics(): Promise<string[]> {
    const { cmd, keys } = this.s;
    const count = await cmd.scard(keys.topics);
    if (count !== this.listed.count || Date.now() >= this.listed.until) {
      const names = await cmd.smembers(keys.topics);
      this.listed = { count, until: Date.now() + SCAN_EVERY_MS, names };
      this.merged = null;
    }
    if (Date.now() >= this.scanned.at) {
      this.scanning ??= this.scanStreams()
        .then((found) => {
          this.scanned = { at: Date.now() + SCAN_EVERY_MS, found };
          this.merged = null;
        })
        .finally(() => (this.scanning = null));
      await this.scanning;
    }
    this.merged ??= [...new Set([...this.listed.names, ...this.scanned.found])].sort();
    return [...this.merged];
  }

  private async scanStreams(): Promise<string[]> {
    const { prefix } = this.s.keys;
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const found: string[] = [];
    // A cluster's keyspace is split across its masters: each is scanned.
    for (const node of this.s.cluster ? (this.s.cmd as unknown as Cluster).nodes('master') : [this.s.cmd]) {
      let cursor = '0';
      do {
        const [next, keys] = (await node.call('SCAN', cursor, 'MATCH', match, 'COUNT', 1000, 'TYPE', 'stream')) as [string, string[]];
        cursor = next;
        for (const key of keys) {
          const type = key.slice(prefix.length);
          // Companion keys ({...}:dlq) and names that are not valid types are not topics.
          if (!key.startsWith('{') && isType(type)) found.push(type);
        }
      } while (cursor !== '0');
    }
    return found;
  }

  async stats(): Promise<TopicStats[]> {
    return redisStats(this.s, await this.topics());
  }

  /** Driver.trim: dedup markers expire by themselves (PX), so only retention is applied, when set. */
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
