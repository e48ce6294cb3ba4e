// A subscription's read loop: reads no more than its free slots (and read-ahead) can hold, carries
// the pending acknowledgements on each read, and hands each batch to the scheduler (scheduler.ts).
// A keyed subscription stands by while another consumer owns its group (keyed/tenure.ts).
import type { Delivery } from './driver.js';
import type { Held } from './held.js';
import { sleep } from './call.js';
import { MAX_UNCOMMITTED } from './keyed/owner.js';
import type { ConsumerState } from './consumer-state.js';
import type { Scheduler } from './scheduler.js';

/** How long a read waits for new events when there is nothing else to do. */
const READ_BLOCK_MS = 1000;
/** Failed events waiting for their retry do not take a concurrency slot; past this many, fetching pauses. */
const RETRY_WAIT_FACTOR = 4;
/**
 * A read of durable requests' replies alone (every slot held) blocks this long while some slot is
 * held by a handler not waiting for a reply: one that ends frees a slot the next read can use.
 */
const REPLY_POLL_MS = 100;

/** A read of durable requests' replies alone takes up to holdMost entries, and at least this many (they take no slot). */
const REPLY_READ_LEAST = 256;

/** Reads until the subscription closes (s.closing); a failed read is logged and tried again after 500 ms. */
export async function readLoop(s: ConsumerState, sched: Scheduler): Promise<void> {
  const { concurrency } = s.o;
  const keyed = s.keyed;
  // The last read was full: more are probably waiting. A read sent then while handlers run does
  // not block (it comes back at once, with the acknowledgements settled meanwhile riding on the
  // read after it); one that finds nothing makes the next read block again, as any read does otherwise.
  let full = false;
  while (!s.closing) {
    if (keyed !== null && !keyed.owner.owned) {
      await keyed.standBy(() => s.topics.list, s.maxBytes);
      continue;
    }
    if (keyed !== null && keyed.owner.uncommitted >= MAX_UNCOMMITTED) {
      await keyed.owner.committed();
      continue;
    }
    // Events held: running, queued in lanes, or read ahead (in `ready`), at most holdMost.
    const ahead = s.readAhead.ahead;
    const holdMost = concurrency + ahead;
    // Reading ahead, a read takes at most half of holdMost, and waits until that much is free (while
    // handlers run): the next read goes out as soon as a batch is handed to its handlers, so one
    // batch's handlers run while the next batch is read, instead of the two taking turns.
    // With nothing running there is nothing to overlap the read with: it takes all there is room
    // for (handlers that return at once, settled before the next read, read twice as much a time).
    const readMost = ahead > 0 && s.running > 0 ? Math.ceil(holdMost / 2) : ahead > 0 ? holdMost : concurrency;
    // Keyed: read once half of holdMost is free (while others run), so reads and the commits that
    // follow them stay large instead of splitting into two interleaved small batches (measured:
    // about 2x the reads and commits per event, and 20% more CPU, without it).
    const readLeast = ahead > 0 || keyed !== null ? holdMost / 2 : 1;
    // Deliveries queued behind a waiting handler hold no slot either (up to RETRY_WAIT_FACTOR x
    // concurrency): else a key's next events could fill the slots while the awaited event stays unread.
    const parked = Math.min(s.lanes.parkedQueued, concurrency * RETRY_WAIT_FACTOR);
    const free = holdMost - (s.running - s.waiting) - (s.lanes.queued - parked) - (s.ready.length - s.readyAt);
    const starved = s.running > 0 && free < readLeast;
    let topics = s.topics.list;
    let max = Math.min(free, readMost);
    let blockMs: number | null = null;
    if (free <= 0 || starved || s.retrying >= concurrency * RETRY_WAIT_FACTOR) {
      s.acks.kick(); // no read to carry them soon
      // Handlers waiting for their durable requests' replies hold their slots (keyed/slots.ts): the
      // replies, which take no slot, are read alone, else those handlers would wait for a read that
      // waits for their slots.
      const replies = s.asking > 0 && s.requests !== null && topics.includes(s.requests.topic) ? s.requests.topic : null;
      if (replies === null) {
        await s.idle();
        continue;
      }
      topics = [replies];
      // Replies take no slot: a full read, so a backlog there (stray or late replies) drains in
      // batches, not one entry a read ahead of the reply awaited.
      max = Math.max(holdMost, REPLY_READ_LEAST);
      blockMs = s.running - s.waiting > s.asking ? REPLY_POLL_MS : READ_BLOCK_MS;
    }
    let batch: Delivery[];
    const ack = blockMs === null ? s.acks.take() : [];
    const gen = s.gen();
    const on = blockMs === null && full && s.running > 0;
    // Keyed: a durable request past its deadline waits for a read of its reply topic sent from now on (keyed/reply-reads.ts): no blocking.
    const keyedRequests = s.requests;
    const looking = keyedRequests !== null && keyedRequests.reads.wanted;
    const sentAt = Date.now();
    s.readingOn = on;
    try {
      batch = await s.driver.reads.read({
        ack,
        group: s.group,
        consumer: s.consumer,
        topics,
        max,
        leaseMs: s.o.claimIdleMs,
        blockMs: looking ? 0 : (blockMs ?? (on ? 0 : READ_BLOCK_MS)),
        signal: s.stopRead.signal,
        maxBytes: s.maxBytes,
      });
    } catch (err) {
      s.readingOn = false;
      s.acks.restore(ack);
      s.acks.kick();
      if (s.closing) break;
      s.storeError('read', err);
      await sleep(500, s.stopRead.signal);
      continue;
    }
    s.readingOn = false;
    full = ahead > 0 && batch.length >= max;
    if (s.closing) {
      // Read raced with close: hand them straight back, uncounted, for the next consumer.
      await s.held.release(batch.map((d): Held => ({ d, subject: undefined, state: 'new' })));
      break;
    }
    if (gen !== s.gen()) continue; // the tenure ended while reading: the next owner takes these over
    // Acks left by handlers that return at once are not kicked meanwhile: every way on from here
    // reads next (carrying them), kicks them (nothing to read yet) or closes (which flushes them).
    s.dispatching = true;
    try {
      sched.dispatchAll(batch);
      if (looking) keyedRequests.reads.read(sentAt, batch.length < max && topics.includes(keyedRequests.topic));
      // Their handlers start now, before the next read is sent (the latency a handler sees).
      sched.runScheduled();
    } finally {
      s.dispatching = false;
    }
    // A partial read (no backlog): handlers that finish at once settle before the next read goes
    // out, so their acks ride on it (one write and one reply instead of an XACK of their own).
    // Never after a full read: with a backlog the next read can go at once, and a turn of the
    // event loop per read cost a SQLite drain 2 us an event (5.6 -> 7.6 us at readAhead 0).
    if (batch.length > 0 && batch.length < max && s.running > 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
