/**
 * A Redis set of names read often and cheaply: one SCARD per read, SMEMBERS only when its size
 * changed or `everyMs` passed since the last SMEMBERS. For sets that only grow (the topics set, the
 * due topics set), an unchanged size means unchanged members; `everyMs` also catches a set that was
 * replaced by one of the same size.
 */
import type { RedisStore } from './client.js';

export class ListedSet {
  private listed: { count: number; until: number; names: string[] } = { count: -1, until: 0, names: [] };

  constructor(
    private readonly s: RedisStore,
    private readonly key: string,
    private readonly everyMs: number,
  ) {}

  /** The members; the same array as the last read while they are unchanged (callers must not change it). */
  async read(): Promise<readonly string[]> {
    const { cmd } = this.s;
    const count = await cmd.scard(this.key);
    if (count === 0) {
      if (this.listed.count !== 0) this.listed = { count, until: 0, names: [] };
    } else if (count !== this.listed.count || Date.now() >= this.listed.until) {
      this.listed = { count, until: Date.now() + this.everyMs, names: await cmd.smembers(this.key) };
    }
    return this.listed.names;
  }
}
