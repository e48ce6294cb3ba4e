/**
 * A Redis set of names read often and cheaply: one SCARD per read, SMEMBERS only when its size
 * changed or `everyMs` passed since the last SMEMBERS. For a set that only grows (the due topics
 * set), an unchanged size means unchanged members. A set members are also removed from (the topics
 * set: reply topics) names a `removals` counter, raised with each removal and read with the SCARD
 * (one round trip, one slot): a removal and an addition between two reads leave the size as it was,
 * not the counter. `everyMs` also catches a set that was replaced by one of the same size.
 */
import type { RedisStore } from './client.js';

export class ListedSet {
  private listed: { count: number; removed: string | null; until: number; names: string[] } = { count: -1, removed: null, until: 0, names: [] };

  constructor(
    private readonly s: RedisStore,
    private readonly key: string,
    private readonly everyMs: number,
    /** The key counting removals from the set, if members are ever removed. */
    private readonly removals: string | null = null,
  ) {}

  /** The members; the same array as the last read while they are unchanged (callers must not change it). */
  async read(): Promise<readonly string[]> {
    const { cmd } = this.s;
    let count: number;
    let removed: string | null = null;
    if (this.removals === null) count = await cmd.scard(this.key);
    else [count, removed] = await Promise.all([cmd.scard(this.key), cmd.get(this.removals)]);
    if (count === 0) {
      if (this.listed.count !== 0) this.listed = { count, removed, until: 0, names: [] };
    } else if (count !== this.listed.count || removed !== this.listed.removed || Date.now() >= this.listed.until) {
      this.listed = { count, removed, until: Date.now() + this.everyMs, names: await cmd.smembers(this.key) };
    }
    return this.listed.names;
  }
}
