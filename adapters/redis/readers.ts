/**
 * Reader connections of the Redis store: each consumer's read loop blocks on a connection of its
 * own, kept here with its claim cursors and the key lists its reads name; CLIENT UNBLOCK, sent from
 * the command connection, wakes a waiting read or ends the last one of a closed loop.
 */
import type { Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { Logger } from 'pino';
import type { ReadRequest } from '../../bus/driver.js';
import { drop as dropConnection, type RedisStore } from './client.js';
import { watchConnection } from './outage.js';

/** How many times wake() asks for an XREADGROUP not yet blocked in Redis (5 ms apart). */
const WAKE_TRIES = 20;

/** What one consumer's read loop keeps between reads: its blocking connection and claim cursors. */
export interface Reader {
  group: string;
  consumer: string;
  conn: Redis;
  cursors: Map<string, string>;
  nextClaim: number;
  /** CLIENT ID of `conn`, renewed on every reconnect, for CLIENT UNBLOCK. */
  clientId: Promise<number>;
  /** The topics the key lists below were built for. */
  topics: string[] | null;
  /** The topic of each key read: its stream and the group's retry stream. */
  topicOf: Map<string, string>;
  /** topicOf's keys. */
  keys: string[];
  /** XREADGROUP's STREAMS arguments: every key, then a '>' for each. On a cluster, one such list per slot. */
  streams: string[];
  slots: string[][];
  /** Cluster: which slot's list the next blocking read waits on. */
  turn: number;
  /** A token of the XREADGROUP in flight, if any, and whether wake() came while none was (see wake). */
  waiting: object | null;
  woken: boolean;
  /** The read in flight's reaction to the consumer closing (read.ts untilAborted), if one is. */
  cutShort: ((reason: unknown) => void) | null;
  /** The consumer's signal the abort listener below was added to. */
  signal: AbortSignal | null;
}

export class Readers {
  private readonly readers = new Map<string, Reader>();
  /** The reader of()'s last call returned: a consumer's next read finds it without making and hashing its map key. */
  private last: Reader | null = null;

  constructor(
    private readonly s: RedisStore,
    private readonly log: Logger,
    /** Log fields for a connection error: where, and the message with any password scrubbed. */
    private readonly connError: (err: Error) => Record<string, unknown>,
  ) {}

  /**
   * The consumer's reader, created on its first read. Each read loop blocks on its own connection.
   * Closing the loop unblocks it with CLIENT UNBLOCK from the command connection, so a read Redis
   * already served still returns its entries (a disconnect would drop them, leaving them pending
   * until claimIdleMs); the connection closes after that last read (drop).
   */
  of(req: ReadRequest): Reader {
    const l = this.last;
    const r = l !== null && l.consumer === req.consumer && l.group === req.group ? l : this.readers.get(`${req.group}\n${req.consumer}`);
    if (!r) return (this.last = this.open(req));
    this.last = r;
    if (r.signal !== req.signal) this.listen(r, req.signal);
    return this.keyLists(r, req);
  }

  /**
   * The consumer closing (its signal aborts): CLIENT UNBLOCK of the read it waits on, and the read in
   * flight cut short if the reader is not connected (read.ts untilAborted). One listener a consumer.
   */
  private listen(reader: Reader, signal: AbortSignal): void {
    reader.signal = signal;
    const { cmd, cluster } = this.s;
    signal.addEventListener('abort', () => {
      if (!cluster) void reader.clientId.then((cid) => cmd.client('UNBLOCK', cid)).catch(() => {});
      reader.cutShort?.(signal.reason);
    }, { once: true });
  }

  private open(req: ReadRequest): Reader {
    const { cmd, cluster } = this.s;
    const conn = (
      cluster
        ? (cmd as unknown as Cluster).duplicate([], { redisOptions: { ...(cmd as unknown as Cluster).options.redisOptions, maxRetriesPerRequest: null } })
        : cmd.duplicate({ maxRetriesPerRequest: null })
    ) as Redis;
    watchConnection(conn, this.log, 'redis reader connection', (err) => ({ group: req.group, consumer: req.consumer, connection: 'reader', ...this.connError(err) }));
    const clientId = () => {
      // A cluster reader is never unblocked (its block is short): no id to ask for.
      if (cluster) return Promise.resolve(-1);
      const p = conn.client('ID') as Promise<number>;
      p.catch(() => {}); // a connection closed meanwhile: nothing left to unblock
      return p;
    };
    const reader: Reader = { group: req.group, consumer: req.consumer, conn, cursors: new Map(), nextClaim: 0, clientId: clientId(), topics: null, topicOf: new Map(), keys: [], streams: [], slots: [], turn: 0, waiting: null, woken: false, cutShort: null, signal: null };
    conn.on('ready', () => (reader.clientId = clientId()));
    this.readers.set(`${req.group}\n${req.consumer}`, reader);
    this.listen(reader, req.signal);
    return this.keyLists(reader, req);
  }

  /**
   * The consumer hands a new topics array only when its topics change: the key lists are rebuilt
   * then. On a cluster the keys are grouped by slot, as one XREADGROUP cannot span slots.
   */
  private keyLists(reader: Reader, req: ReadRequest): Reader {
    if (reader.topics === req.topics) return reader;
    reader.topics = req.topics;
    reader.topicOf = new Map();
    for (const t of req.topics) {
      reader.topicOf.set(this.s.keys.stream(t), t);
      reader.topicOf.set(this.s.keys.retry(t, req.group), t);
    }
    const keys = [...reader.topicOf.keys()];
    reader.keys = keys;
    reader.streams = [...keys, ...keys.map(() => '>')];
    if (this.s.cluster) {
      const bySlot = new Map<number, string[]>();
      for (const key of keys) {
        const slot = calculateSlot(key);
        bySlot.set(slot, [...(bySlot.get(slot) ?? []), key]);
      }
      reader.slots = [...bySlot.values()].map((ks) => [...ks, ...ks.map(() => '>')]);
    }
    return reader;
  }

  /**
   * CLIENT UNBLOCK of the consumer's blocked XREADGROUP: it returns nothing, as at its timeout.
   * The command may not have reached Redis yet (UNBLOCK answers 0): asked again shortly, while the
   * same read is in flight. With no XREADGROUP in flight, the next one does not block (the read
   * under way may have been built with the old topics). A cluster read blocks briefly at most
   * (see read.ts): left alone.
   */
  wake(group: string, consumer: string): void {
    const r = this.readers.get(`${group}\n${consumer}`);
    if (!r || this.s.cluster) return;
    const read = r.waiting;
    if (!read) return void (r.woken = true);
    const attempt = (n: number): void =>
      void r.clientId
        .then((cid) => this.s.cmd.client('UNBLOCK', cid))
        .then((done) => {
          if (Number(done) === 0 && r.waiting === read && n < WAKE_TRIES) setTimeout(() => attempt(n + 1), 5);
        })
        .catch(() => {}); // the connection is gone: its read ends by itself
    attempt(1);
  }

  /** After the last read of a closed loop: its connection goes. */
  drop(req: ReadRequest): void {
    const id = `${req.group}\n${req.consumer}`;
    const r = this.readers.get(id);
    if (!r) return;
    this.readers.delete(id);
    if (this.last === r) this.last = null;
    dropConnection(r.conn);
  }

  close(): void {
    for (const r of this.readers.values()) dropConnection(r.conn);
    this.readers.clear();
    this.last = null;
  }
}
