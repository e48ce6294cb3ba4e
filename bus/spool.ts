/**
 * The spool as the engine sees it: where publishes go while the store is unreachable (Redis'
 * `spool` option, adapters/redis/spool/), and what a publish resolves with when the caller asks
 * where its event went (Bus.publishDetailed). Store-agnostic: the engine only routes appends through it.
 */
import type { AppendEntry, AppendHas } from './delivery.js';

/** What Bus.publishDetailed and Bus.publishBatchDetailed resolve with, per event. */
export interface PublishResult {
  /** The event's id, as `publish` resolves with. */
  id: string;
  /**
   * true: the store was unreachable and the event is in the local spool (durable on disk), to be
   * forwarded with this id once the store is back; false: the store has it. A bus without a spool:
   * always false.
   */
  spooled: boolean;
}

/** The spool's figures (Bus.spool.stats(), and the host's agentbus_spool_* metrics). */
export interface SpoolStats {
  /** The spool's SQLite file, absolute. */
  path: string;
  /** Events this bus wrote to the spool since it opened. */
  spooled: number;
  /** Events this bus forwarded from the spool to the store (and removed from the spool) since it opened. */
  forwarded: number;
  /** Events in the spool now, left by this process or an earlier one. */
  events: number;
  /** Their size as counted against `maxBytes`. */
  bytes: number;
  maxBytes: number;
  /** Seconds since the oldest event now in the spool was spooled; null when empty. */
  oldestAgeSeconds: number | null;
}

/** What the engine routes appends through when a spool is configured. */
export interface BusSpool {
  /**
   * Stores `entries` in the store, or in the spool (the store unreachable, or earlier events of one
   * of their topics still spooled): resolves true when spooled. Rejects what the store refused for
   * another reason, and with SPOOL_FULL past the spool's maxBytes; either way nothing was stored.
   */
  append(entries: AppendEntry[], has?: AppendHas): Promise<boolean>;
  /** Starts forwarding (what an earlier process left too); `stored` hears of each forwarded batch. */
  start(stored: (entries: AppendEntry[]) => void): void;
  stats(): SpoolStats;
  /** Stops forwarding (a forward in flight completes) and closes the file; what is left stays for the next bus. */
  close(): Promise<void>;
}
