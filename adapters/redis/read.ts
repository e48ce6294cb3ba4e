/**
 * The Redis read path, as named steps: acknowledge what the consumer finished, claim deliveries
 * whose lease ran out (claimExpired), read new entries (readNew, per slot on a cluster), and
 * recreate a group that went missing (recreateGroup).
 */
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Delivery, DriverGroups, DriverLeases, DriverReads, ReadRequest } from '../../bus/driver.js';
import { isRedisError, type RedisStore } from './client.js';
import { byKey, delivery } from './delivery.js';
import type { Liveness } from './liveness.js';
import type { Reader, Readers } from './readers.js';
import { claimExpired, type Entry } from './scripts/lease.js';
import { sendEncoded } from './resp.js';

/**
 * On a cluster a read blocks on one slot's streams at a time (one XREADGROUP cannot span slots),
 * so it blocks briefly and rotates; and it is not unblocked on close, so closing waits this long.
 */
const CLUSTER_BLOCK_MS = 100;

type Streams = [key: string, entries: Entry[]][];

/** What readNew returns when the loop closed during its read: nothing read (frozen: never added to). */
const ENDED: Delivery[] = Object.freeze([]) as unknown as Delivery[];

export class ReadPath implements DriverReads {
  readonly roundTrip = true;

  constructor(
    private readonly s: RedisStore,
    private readonly readers: Readers,
    private readonly liveness: Liveness,
    private readonly log: Logger,
    private readonly leases: Pick<DriverLeases, 'ack'>,
    private readonly groups: Pick<DriverGroups, 'create'>,
  ) {}

  /**
   * Driver.reads.read: see there. The acknowledgements share the read's round trip: on one Redis,
   * when the read goes straight to XREADGROUP, they go in the same pipeline on the reader's
   * connection (one write and one reply for both: a drain spent a tenth of its CPU writing a second
   * command per batch); otherwise they go out first on the command connection and are awaited last.
   */
  read(req: ReadRequest): Promise<Delivery[]> {
    const reader = this.readers.of(req);
    const { topicOf } = reader;
    const claiming = Date.now() >= reader.nextClaim && topicOf.size > 0;
    const along = !this.s.cluster && !claiming && topicOf.size > 0 && !req.signal.aborted;
    if (topicOf.size > 0) this.liveness.sweepSoon(req.group, req.consumer, reader.keys, req.leaseMs);
    // The common read, new entries only with the acks (if any) riding along: readNew is the read
    // (no async function around it).
    if (along || (req.ack.length === 0 && !claiming && topicOf.size > 0 && !req.signal.aborted)) {
      return this.readNew(req, reader, [], along ? req.ack : []);
    }
    return this.readClaiming(req, reader, claiming, along);
  }

  /** read(), claiming expired deliveries first, or with its acks sent apart, or with no topics. */
  private async readClaiming(req: ReadRequest, reader: Reader, claiming: boolean, along: boolean): Promise<Delivery[]> {
    const { topicOf } = reader;
    const acked = req.ack.length && !along ? this.leases.ack(req.group, req.ack) : null;
    // Awaited last: a claim or read failing first must not leave its rejection unhandled (a crash).
    acked?.catch(() => {});
    const out: Delivery[] = [];
    if (claiming) await this.claimExpired(req, reader, out);
    if (out.length < req.max && topicOf.size > 0 && !req.signal.aborted) {
      if ((await this.readNew(req, reader, out, along ? req.ack : [])) === ENDED) return out;
    } else if (out.length === 0 && topicOf.size === 0) {
      await new Promise((r) => setTimeout(r, Math.min(req.blockMs, 100)));
    }
    if (req.signal.aborted) this.readers.drop(req);
    if (acked) await acked;
    return out;
  }

  /** Driver.reads.wake: unblocks the consumer's waiting XREADGROUP (readers.ts). */
  wake(group: string, consumer: string): void {
    this.readers.wake(group, consumer);
  }

  /**
   * XAUTOCLAIM on every key, following each cursor to the end of the pending list over successive
   * passes (never restarting from 0-0 early, which would never reach entries past COUNT x 10).
   * The claim and the delivery counts come from one script (claimExpired), so an entry another
   * consumer acknowledges meanwhile is either not claimed or claimed with its count, never handed
   * out again as attempt 1; one with no pending record (none expected) is dropped, not delivered.
   * Ids Redis reports deleted (trimmed while pending) are acknowledged away; their count is logged.
   */
  private async claimExpired(req: ReadRequest, reader: Reader, out: Delivery[]): Promise<void> {
    let complete = true;
    for (const [key, topic] of reader.topicOf) {
      let cursor = reader.cursors.get(key) ?? '0-0';
      for (;;) {
        const room = req.max - out.length;
        if (room <= 0) {
          complete = false;
          break;
        }
        const [next, entries, deleted, counts] = await claimExpired.call(this.s.cmd, key, req.group, req.consumer, req.leaseMs, cursor, room);
        const gone = [...deleted, ...entries.filter(([, f]) => f === null).map(([id]) => id)];
        if (gone.length) {
          await this.s.cmd.xack(key, req.group, ...gone);
          this.log.warn({ group: req.group, type: topic, count: gone.length }, 'pending entries were trimmed before delivery; cleared');
        }
        entries.forEach(([id, fields], i) => {
          if (fields !== null && counts[i] > 0) out.push(delivery(topic, key, id, Number(counts[i]), fields, req.maxBytes));
        });
        entries.length = 0; // let go of the reply now, as readNew does
        cursor = next;
        if (cursor === '0-0') {
          reader.cursors.delete(key);
          break;
        }
        reader.cursors.set(key, cursor);
      }
    }
    if (complete) reader.nextClaim = Date.now() + Math.max(50, Math.floor(req.leaseMs / 2));
  }

  /**
   * New entries (XREADGROUP '>') into `out`, blocking up to blockMs when nothing was claimed and no
   * wake-up came meanwhile. A missing group is recreated (the read returns what it has). Returns
   * `out`, or ENDED when the read ended because the loop closed: its reader is gone then (as it is
   * when the loop closed during a read that returned). `acks` (one Redis only) go before the
   * XREADGROUP in one pipeline; a failed XACK fails the read, as it does when sent apart.
   */
  private async readNew(req: ReadRequest, reader: Reader, out: Delivery[], acks: Delivery[]): Promise<Delivery[]> {
    let res: Streams | null;
    const waiting = {};
    reader.waiting = waiting;
    // Woken before this read was sent (it may have been built with the old topics): do not block.
    const block = out.length > 0 || reader.woken ? 0 : req.blockMs;
    reader.woken = false;
    try {
      if (this.s.cluster) res = await this.readSlots(req, reader, req.max - out.length, out.length > 0);
      else if (acks.length === 0) res = await untilAborted(xread(req, reader, reader.streams, req.max - out.length, block), reader);
      else {
        // The acks and the read written together (see ackAndRead); the XACK's reply comes before
        // the read's on the one connection, so once the read is back the acks are settled.
        const acked = ackAndRead(req, reader, acks, block);
        res = await untilAborted(acked.read, reader);
        await acked.acks;
      }
    } catch (err) {
      if (reader.waiting === waiting) reader.waiting = null;
      if (req.signal.aborted) {
        this.readers.drop(req);
        return ENDED;
      }
      if (!isRedisError(err, 'NOGROUP')) throw err;
      await this.recreateGroup(req);
      res = null;
    }
    if (reader.waiting === waiting) reader.waiting = null;
    // Indexed, not destructured: no iterator per read and per stream.
    for (let k = 0; res !== null && k < res.length; k++) {
      const key = res[k][0];
      const entries = res[k][1];
      const topic = reader.topicOf.get(key)!;
      // Indexed, not destructured: per entry, an iterator less (the path every event read takes).
      for (let i = 0; i < entries.length; i++) out.push(delivery(topic, key, entries[i][0], 1, entries[i][1], req.maxBytes));
      // The reply is let go now: emptied, it holds nothing. Something keeps the reply array
      // reachable after the read (not pinned down; a bare ioredis loop shows it too, in some runs
      // and not others), and young-generation collections then found every string of every reply
      // alive twice and promoted it to the old generation, to be marked and compacted later: 31 MB
      // per 100,000 events of a drain, 3 MB emptied (bench/redis-drain.ts `promotedMB`).
      entries.length = 0;
    }
    if (req.signal.aborted) this.readers.drop(req);
    return out;
  }

  /** The group (or the stream) is gone: Redis restarted without persistence, or someone deleted it. */
  private async recreateGroup(req: ReadRequest): Promise<void> {
    this.log.warn({ group: req.group, topics: req.topics }, 'consumer group missing (NOGROUP): recreating it');
    await this.groups.create(req.group, req.topics, 'earliest');
  }

  /**
   * A cluster read: one XREADGROUP per slot (one cannot span slots). Every slot is read without
   * blocking; when none has anything, the read blocks briefly on one slot, a different one each time.
   */
  private async readSlots(req: ReadRequest, reader: Reader, room: number, haveSome: boolean): Promise<Streams | null> {
    const block = Math.min(req.blockMs, CLUSTER_BLOCK_MS);
    const { slots } = reader;
    if (slots.length === 1) return xread(req, reader, slots[0], room, haveSome ? 0 : block);
    const res: Streams = [];
    for (const streams of slots) {
      if (room <= 0) break;
      for (const r of (await xread(req, reader, streams, room, 0)) ?? []) {
        res.push(r);
        room -= r[1].length;
      }
    }
    if (res.length > 0 || haveSome) return res;
    return xread(req, reader, slots[reader.turn++ % slots.length], room, block);
  }
}

/** XREADGROUP of new entries on `streams` (keys, then a '>' each); blockMs 0 does not block. */
function xread(req: ReadRequest, reader: Reader, streams: string[], count: number, blockMs: number): Promise<Streams | null> {
  return blockMs > 0
    ? sendEncoded(reader.conn, 'xreadgroup', ['GROUP', req.group, req.consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', streams])
    : sendEncoded(reader.conn, 'xreadgroup', ['GROUP', req.group, req.consumer, 'COUNT', count, 'STREAMS', streams]);
}

/**
 * One Redis: XACK of `acks` (one per stream key) and the XREADGROUP of new entries (up to req.max,
 * nothing claimed before it) on the reader's connection, written to its socket together (corked:
 * one write). Not an async function awaiting both (a promise and two awaits per read): the caller
 * awaits the read, then the acks, so the acknowledgements' errors come after the read's, each
 * thrown as it would be alone; a rejection of `acks` after the read's is not left unhandled.
 */
function ackAndRead(req: ReadRequest, reader: Reader, acks: Delivery[], blockMs: number): { read: Promise<Streams | null>; acks: Promise<unknown> } {
  const socket = (reader.conn as unknown as { stream?: Writable }).stream;
  socket?.cork();
  const acked = xackAll(reader, req.group, acks);
  acked.catch(ignore);
  const read = xread(req, reader, reader.streams, req.max, blockMs);
  socket?.uncork();
  return { read, acks: acked };
}

const ignore = (): void => {};

/**
 * XACK of `acks`, one per stream key. The common case, every ack of one key (a subscription to one
 * topic), makes one XACK from one array of ids: no Map, no spread arguments, no Promise.all.
 */
function xackAll(reader: Reader, group: string, acks: Delivery[]): Promise<unknown> {
  const key = acks[0].ref;
  const ids: string[] = new Array(acks.length);
  for (let i = 0; i < acks.length; i++) {
    if (acks[i].ref !== key) return Promise.all([...byKey(acks)].map(([k, kIds]) => xack(reader, k, group, kIds)));
    ids[i] = acks[i].position;
  }
  return xack(reader, key, group, ids);
}

/** XACK with the ids as one array argument (flattened, as ioredis does). */
const xack = (reader: Reader, key: string, group: string, ids: string[]): Promise<number> => sendEncoded(reader.conn, 'xack', [key, group, ids]);

/**
 * `read`, or a rejection as soon as the consumer's signal aborts (a closing consumer) while the
 * reader is not connected: a read sent before Redis went away waits in the reader's offline queue,
 * with no retry limit, until Redis is back, and a subscription closed during an outage waited for it
 * forever. Connected, the abort's CLIENT UNBLOCK ends the read (what it took is then given back). A
 * later rejection of `read` is swallowed. The abort comes through the reader's one listener
 * (readers.ts, `cutShort`), not one added and removed per read (a tenth of a µs per event in a drain).
 * `read` settles the promise through its own resolve and reject (not resolve(read), after which a
 * reject does nothing); `cutShort` is left set once it settled (the next read replaces it, and
 * rejecting a settled promise does nothing): per read, one closure of ours.
 */
function untilAborted<T>(read: Promise<T>, reader: Reader): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    read.then(resolve, reject);
    reader.cutShort = (reason: unknown) => {
      if (reader.conn.status !== 'ready') reject(reason);
    };
  });
}
