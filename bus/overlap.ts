// Which publisher appends may overlap (bus/batcher.ts overlap, DriverLog.overlapAppends): on one
// Redis a slow reply to one append held back every publish made meanwhile, then cost them another
// round trip of their own, the largest part of the publish -> handler tail that raw XADDs do not have.
import type { AppendEntry } from './driver.js';

/**
 * An append that is written whole at its call, one command an entry, nothing sent again later:
 * no named delayed entry (several steps, each after a reply), no caller-chosen id (a script, which
 * ioredis sends again after a NOSCRIPT reply, behind what followed it) and not split in several
 * round trips (more than `most` entries).
 */
export function oneStep(batches: readonly { entries: readonly AppendEntry[] }[], most: number): boolean {
  let n = 0;
  for (const b of batches) {
    n += b.entries.length;
    if (n > most) return false;
    for (const e of b.entries) if (e.dedup || e.dueName !== undefined) return false;
  }
  return true;
}

/**
 * Wraps `send` for a store that keeps overlapping appends in call order: returns the send to use
 * and the Batcher's overlap test, which lets a batch go while others are in flight when it and
 * every batch in flight are oneStep (a later batch never overtakes part of an earlier one).
 */
export function overlapping<B extends { entries: readonly AppendEntry[] }>(
  send: (batches: B[]) => Promise<void>,
  most: number,
): { send: (batches: B[]) => Promise<void>; overlap: (waiting: readonly B[]) => boolean } {
  /** Sends in flight that are not oneStep. */
  let stepping = 0;
  const counted = async (batches: B[]): Promise<void> => {
    stepping++;
    try {
      await send(batches);
    } finally {
      stepping--;
    }
  };
  return {
    // A oneStep batch is `send` itself: no async function around it.
    send: (batches) => (oneStep(batches, most) ? send(batches) : counted(batches)),
    overlap: (waiting) => stepping === 0 && oneStep(waiting, most),
  };
}
