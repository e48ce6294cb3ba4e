// The keys an owner holds in memory (passivation, guarantee 8): least recently used first, evicted
// past `maxActiveKeys` unless in use (a delivery of the key held, or a change not yet committed).
// Eviction goes down to 15/16 of the bound in one pass (LOW_WATER_DIVISOR), not one key per new key: a
// Map keeps deleted slots at its front until it rehashes, so walking it from the oldest entry at
// every put past the bound cost a walk over thousands of holes each time (22 us a put at 10,000
// keys, 70 us at 100,000, against about 1 us with the pass).

/** One key's state as the owner holds it. */
export interface KeyEntry {
  key: string;
  /** The store's version of the key as last loaded or committed by this owner (0: no record). */
  version: number;
  /** The state as last accepted (committed or waiting to be), as JSON: what a failed handler rolls back to. */
  json: string;
  /** The live value handed to handlers (mutated in place by them). */
  value: unknown;
  /** Last applied position per source stream, as loaded and advanced here. */
  applied: Record<string, string>;
  /** Positions advanced since the last commit (written with it). */
  appliedDelta: Record<string, string> | null;
  /** Deliveries of the key held by the consumer (queued, running, waiting for a retry). */
  pins: number;
  /** A change (or acknowledgements) waiting for the next commit. */
  dirty: boolean;
  /** The last accepted state was null/undefined: the key's record is removed at the next commit (handlers see initialState meanwhile). */
  removed?: boolean;
  /**
   * When the stored record expires (stateTtlMs; epoch ms, 0: never), as this owner reckons it:
   * from the record's updatedAt at load, from the commit's start after a commit (before the store
   * wrote it). Past it the entry is not used again: the key is loaded anew. A store clock ahead of
   * this one can expire the record first: the next commit of the key then conflicts and the
   * consumer starts over from the store (the state is never resurrected).
   */
  expiresAt: number;
  /** The cache's insertion count when it was last put at the end of the LRU order (cache.ts). */
  inserted: number;
  /** The stored record is known to carry no expiry (none loaded, or committed here last with no TTL): see StateWrite.noExpiry. */
  noExpiry: boolean;
}

/** Share of the bound an eviction pass frees: it stops at max - floor(max / 16) keys (bounds under 16 evict to the bound). */
const LOW_WATER_DIVISOR = 16;

export class KeyCache {
  private readonly entries = new Map<string, KeyEntry>();
  /** Where an eviction pass stops. */
  private readonly low: number;
  /** Insertions into `entries` so far (each entry keeps its own count at insertion: KeyEntry.inserted). */
  private inserted = 0;
  /** An entry inserted within this many insertions is not moved by get() (see there). */
  private readonly fresh: number;
  evictions = 0;

  constructor(private readonly max: number) {
    this.low = max - Math.floor(max / LOW_WATER_DIVISOR);
    this.fresh = Math.floor(max / 4);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The entry, marked recently used: moved to the Map's end, unless it was put there within the
   * last `fresh` insertions (it is among the newest then, far from the eviction pass, which stops
   * at 15/16 of the bound). Moving every entry on every event (a delete and a set) was about 1 us
   * a delivery of a keyed drain; the order evicted differs from exact LRU only among those newest.
   */
  get(key: string): KeyEntry | undefined {
    const e = this.entries.get(key);
    if (e !== undefined && this.inserted - e.inserted > this.fresh) {
      this.entries.delete(key);
      this.entries.set(key, e);
      e.inserted = ++this.inserted;
    }
    return e;
  }

  /**
   * Adds a loaded entry (keeping one already there: a load racing another for the same key). The
   * entry itself is never the one evicted: it is about to be pinned by the delivery that asked for
   * it, and evicted now its change would live outside the cache, the key's next delivery loading
   * the stale stored state again (a conflict at commit, and the whole tenure started over).
   */
  put(e: KeyEntry): KeyEntry {
    const had = this.entries.get(e.key);
    if (had !== undefined) return had;
    this.entries.set(e.key, e);
    e.inserted = ++this.inserted;
    this.evict(e);
    return e;
  }

  /** Past the bound: evicts idle entries, oldest first, down to the low water mark (entries in use, and `keep`, are skipped, never lost). */
  evict(keep?: KeyEntry): void {
    if (this.entries.size <= this.max) return;
    for (const e of this.entries.values()) {
      if (this.entries.size <= this.low) break;
      if (e === keep || e.pins > 0 || e.dirty) continue;
      this.entries.delete(e.key);
      this.evictions++;
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  /** Sum of the JSON sizes held (a metric; walks every entry). */
  bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.json.length;
    return n;
  }
}
