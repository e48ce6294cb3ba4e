import type { Cluster, Redis, ChainableCommander } from 'ioredis';
import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import type { Logger } from 'pino';
import { isoTime, type AppendEntry, type Delivery, type Driver, type RangeQuery, type ReadRequest, type StoreBound } from '../../bus/driver.js';
import type { DeadLetter, TopicStats } from '../../bus/contract.js';
import { decodeEvent, isType, type CloudEvent } from '../../bus/event.js';
import { invalid, NotFoundError } from '../../bus/errors.js';
import { decodeEntry, decodeFields, decodeFlat, envelopeText, EVENT_FIELD, tooLarge } from './codec.js';
import { encodeBody, entryFields, FIELDS_MARKER, FLAT_MARKER, Layouts } from './layout.js';
import { listDeadLetters, Liveness, redisStats } from './stats.js';
import { watchConnection } from './outage.js';

/** Idle time set on a released entry: far past any claimIdleMs, so the next XAUTOCLAIM takes it. */
const RELEASED_IDLE_MS = 2 ** 40;
const MAX_SEQ = '18446744073709551615';
/** How often topics() looks for streams other programs created. */
const SCAN_EVERY_MS = 10_000;
/** How many times wakeRead asks for an XREADGROUP not yet blocked in Redis (5 ms apart). */
const WAKE_TRIES = 20;
/** Up to this many entries are appended as plain commands rather than a Pipeline. */
const SMALL_BATCH = 32;
/**
 * On a cluster a read blocks on one slot's streams at a time (one XREADGROUP cannot span slots),
 * so it blocks briefly and rotates; and it is not unblocked on close, so closing waits this long.
 */
const CLUSTER_BLOCK_MS = 100;

type Entry = [id: string, fields: string[] | null];
type Client = Redis | Cluster;
export type Commands = Redis & Record<string, (...args: unknown[]) => Promise<unknown>>;
/** The client or a pipeline: both take the same commands, including the scripts. */
export type Sender = Record<string, (...args: unknown[]) => unknown>;

/** Runs a pipeline; the first failed command's error is thrown. */
async function execAll(p: ChainableCommander | Sender): Promise<void> {
  for (const [err] of (await (p as ChainableCommander).exec()) ?? []) if (err) throw err;
}

/**
 * A cluster's stand-in for a Pipeline, whose keys must all share one slot there: it records the
 * commands and sends them at once as separate commands (ioredis routes each to its node), and
 * `exec()` answers in a Pipeline's shape, `[error, result]` per command.
 */
function clusterBatch(client: Commands): Sender {
  const calls: Array<() => Promise<unknown>> = [];
  return new Proxy({} as Sender, {
    get: (_, name: string) =>
      name === 'exec'
        ? () => Promise.all(calls.map((c) => c().then((r) => [null, r] as const, (e: Error) => [e, null] as const)))
        : (...args: unknown[]) => void calls.push(() => client[name](...args)),
  });
}

/** Where each kind of key lives. Companion keys use the whole stream key as hash tag: same slot. */
export class Keys {
  readonly topics: string;
  /** Topics this deployment published to: retention trims these only. */
  readonly published: string;
  readonly groups: string;
  constructor(readonly prefix: string) {
    // Types cannot contain braces, so these never collide with a topic.
    this.topics = `${prefix}{agentbus}:topics`;
    this.published = `${prefix}{agentbus}:published`;
    this.groups = `${prefix}{agentbus}:groups`;
  }
  stream = (type: string) => this.prefix + type;
  dlq = (type: string) => `{${this.prefix}${type}}:dlq`;
  /** Dead letters per group (hash field = group), kept by the scripts that add and remove them. */
  dlqCount = (type: string) => `{${this.prefix}${type}}:dlqcount`;
  /** Live consumers of a group: a sorted set of consumer names scored by their last heartbeat. */
  alive = (group: string) => `${this.prefix}{agentbus}:alive:${group}`;
  retry = (type: string, group: string) => `{${this.prefix}${type}}:retry:${group}`;
  /**
   * The marker of a caller id: a hash of `[source, id]` as JSON, so no two (source, id) pairs share a
   * key (`a|b` + `c` and `a` + `b|c` did while the key was `<source>|<id>`) and its length is bounded.
   */
  dedup = (type: string, source: string, id: string) =>
    `{${this.prefix}${type}}:dedup:${createHash('sha256').update(JSON.stringify([source, id])).digest('hex')}`;
}

/** What one consumer's read loop keeps between reads: its blocking connection and claim cursors. */
interface Reader {
  conn: Redis;
  cursors: Map<string, string>;
  nextClaim: number;
  /** CLIENT ID of `conn`, renewed on every reconnect, for CLIENT UNBLOCK. */
  clientId: Promise<number>;
  /** The topics the key lists below were built for. */
  topics: string[] | null;
  topicOf: Map<string, string>;
  /** XREADGROUP's STREAMS arguments: every key, then a '>' for each. On a cluster, one such list per slot. */
  streams: string[];
  slots: string[][];
  /** Cluster: which slot's list the next blocking read waits on. */
  turn: number;
  /** A token of the XREADGROUP in flight, if any, and whether wakeRead came while none was (see wakeRead). */
  waiting: object | null;
  woken: boolean;
}

/**
 * Redis Streams store: a stream per topic, a consumer group per group, XAUTOCLAIM for deliveries
 * whose lease ran out, the delivery count as the attempt count, dead letters in `{stream}:dlq`, and
 * a per-group retry stream through which a retried dead letter reaches its group only.
 */
export class RedisDriver implements Driver {
  private readonly knownTopics = new Set<string>();
  private readonly readers = new Map<string, Reader>();
  private readonly cmd: Commands;
  /** A Redis Cluster: no multi-slot pipelines, reads grouped by slot, SCAN on every master. */
  private readonly cluster: boolean;

  constructor(
    cmd: Client,
    private readonly keys: Keys,
    private readonly log: Logger,
    private readonly ownsClient: boolean,
    /** Log fields for a connection error: where, and the message with any password scrubbed. */
    private readonly connError: (err: Error) => Record<string, unknown>,
    /** How each topic's entries are written (the `layout` option). */
    private readonly layouts: Layouts = new Layouts(undefined),
  ) {
    this.cmd = cmd as Commands;
    this.cluster = (cmd as Cluster).isCluster === true;
    this.liveness = new Liveness(this.store);
  }

  /** What stats.ts works with. */
  private get store() {
    return { cmd: this.cmd, keys: this.keys, batch: () => this.pipeline() };
  }

  private readonly liveness: Liveness;

  /**
   * Up to SMALL_BATCH entries go as plain commands: ioredis writes each at once, and building a
   * Pipeline costs more garbage than it saves (it doubled GC pauses at 10k events/s in 1 ms ticks,
   * measured). Larger batches go in one Pipeline.
   */
  async append(entries: AppendEntry[]): Promise<void> {
    if (entries.length <= SMALL_BATCH) {
      await Promise.all(entries.flatMap((e) => this.send(this.cmd, e) as Promise<unknown>[]));
    } else {
      const p = this.pipeline();
      for (const e of entries) this.send(p, e);
      await execAll(p);
    }
    for (const e of entries) this.knownTopics.add(e.topic);
  }

  /** A pipeline that also takes the scripts defined on the client. */
  private pipeline(): Sender {
    return this.cluster ? clusterBatch(this.cmd) : (this.cmd.pipeline() as unknown as Sender);
  }

  /** The body of an entry in its topic's layout (see layout.ts encodeBody). */
  encode(event: CloudEvent, maxBytes: number): string {
    return encodeBody(this.layouts.of(event.type), event, maxBytes);
  }

  /**
   * Issues one entry's commands on the client or a pipeline: the dedup script or XADD of the fields
   * of its topic's layout, and, once per topic, its registration as a known topic and as a published
   * one (the topics retention trims).
   */
  private send(to: Sender, e: AppendEntry): unknown[] {
    const key = this.keys.stream(e.topic);
    const fields = entryFields(this.layouts.of(e.topic), e.event, e.body);
    const sent = [
      e.dedup && e.dedupWindowMs > 0
        ? to.agentbusPublishOnce(key, this.keys.dedup(e.topic, e.event.source, e.event.id), e.dedupWindowMs, fields)
        : to.xadd(key, '*', fields),
    ];
    if (!this.knownTopics.has(e.topic)) sent.push(to.sadd(this.keys.topics, e.topic), to.sadd(this.keys.published, e.topic));
    return sent;
  }

  /**
   * Known topics: those published or subscribed through agentbus (a set), plus streams under the
   * prefix that only other programs write, found by SCAN ... TYPE stream at most every SCAN_EVERY_MS
   * (a SCAN walks the whole keyspace). Pattern consumers ask every 100 ms: the set is read again
   * only when its size (SCARD, O(1)) changed, or every SCAN_EVERY_MS; one SCAN runs at a time.
   */
  async topics(): Promise<string[]> {
    const count = await this.cmd.scard(this.keys.topics);
    if (count !== this.listed.count || Date.now() >= this.listed.until) {
      const names = await this.cmd.smembers(this.keys.topics);
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

  private listed: { count: number; until: number; names: string[] } = { count: -1, until: 0, names: [] };
  private scanned: { at: number; found: string[] } = { at: 0, found: [] };
  private scanning: Promise<void> | null = null;
  private merged: string[] | null = null;

  private async scanStreams(): Promise<string[]> {
    const { prefix } = this.keys;
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const found: string[] = [];
    // A cluster's keyspace is split across its masters: each is scanned.
    for (const node of this.cluster ? (this.cmd as unknown as Cluster).nodes('master') : [this.cmd]) {
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

  async createGroup(group: string, topics: string[], from: 'latest' | 'earliest'): Promise<number> {
    let start = await this.cmd.hget(this.keys.groups, group);
    // A new latest group starts at each existing stream's newest entry ($, exact); a topic met later
    // (a pattern) starts at the group's recorded start.
    const fresh = start === null && from === 'latest';
    let created = false;
    if (start === null) {
      // Server time, not ours: a skewed client clock must not skip events published after this.
      // The start is the id just before <now>-0: an event added in this very millisecond gets
      // <now>-0 itself and must still count as new.
      const [sec, usec] = await this.cmd.time();
      const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
      created = (await this.cmd.hsetnx(this.keys.groups, group, from === 'earliest' ? '0' : before(`${now}-0`))) === 1;
      start = (await this.cmd.hget(this.keys.groups, group))!;
    }
    // Skipped events are counted (XLEN, O(1)) for a group this call made at latest, on each stream
    // where its XGROUP CREATE is new (not BUSYGROUP: another program's group of that name).
    const count = created && fresh;
    const p = this.pipeline();
    for (const t of topics) {
      if (count) p.xlen(this.keys.stream(t));
      p.xgroup('CREATE', this.keys.stream(t), group, fresh ? '$' : start, 'MKSTREAM');
      p.xgroup('CREATE', this.keys.retry(t, group), group, '0', 'MKSTREAM');
      p.sadd(this.keys.topics, t);
    }
    const replies = ((await p.exec()) as [Error | null, unknown][] | null) ?? [];
    for (const [err] of replies) if (err && !String(err.message).startsWith('BUSYGROUP')) throw err;
    if (!count) return 0;
    let skipped = 0;
    for (let i = 0; i < replies.length; i += 4) if (replies[i + 1][0] === null) skipped += Number(replies[i][1]);
    return skipped;
  }

  async read(req: ReadRequest): Promise<Delivery[]> {
    const acked = req.ack.length ? this.ack(req.group, req.ack) : null;
    const reader = this.reader(req);
    if (reader.topics !== req.topics) {
      // The consumer hands a new array only when its topics change: rebuild the key lists then.
      reader.topics = req.topics;
      reader.topicOf = new Map();
      for (const t of req.topics) {
        reader.topicOf.set(this.keys.stream(t), t);
        reader.topicOf.set(this.keys.retry(t, req.group), t);
      }
      reader.streams = [...reader.topicOf.keys(), ...[...reader.topicOf.keys()].map(() => '>')];
      if (this.cluster) {
        const bySlot = new Map<number, string[]>();
        for (const key of reader.topicOf.keys()) {
          const slot = calculateSlot(key);
          bySlot.set(slot, [...(bySlot.get(slot) ?? []), key]);
        }
        reader.slots = [...bySlot.values()].map((keys) => [...keys, ...keys.map(() => '>')]);
      }
    }
    const topicOf = reader.topicOf;
    if (topicOf.size > 0) this.liveness.sweepSoon(req.group, req.consumer, [...topicOf.keys()], req.leaseMs);
    const out: Delivery[] = [];
    if (Date.now() >= reader.nextClaim && topicOf.size > 0) await this.claim(req, reader, topicOf, out);
    if (out.length < req.max && topicOf.size > 0 && !req.signal.aborted) {
      let res: [string, Entry[]][] | null;
      const waiting = {};
      reader.waiting = waiting;
      // Woken before this read was sent (it may have been built with the old topics): do not block.
      const block = out.length > 0 || reader.woken ? 0 : req.blockMs;
      reader.woken = false;
      try {
        res = this.cluster
          ? await this.readSlots(req, reader, req.max - out.length, out.length > 0)
          : await xread(req, reader, reader.streams, req.max - out.length, block);
      } catch (err) {
        if (reader.waiting === waiting) reader.waiting = null;
        if (req.signal.aborted) {
          this.dropReader(req);
          return out;
        }
        if (!String((err as Error).message).startsWith('NOGROUP')) throw err;
        // The group (or the stream) is gone: Redis restarted without persistence, or someone deleted it.
        this.log.warn({ group: req.group, topics: req.topics }, 'consumer group missing (NOGROUP): recreating it');
        await this.createGroup(req.group, req.topics, 'earliest');
        res = null;
      }
      if (reader.waiting === waiting) reader.waiting = null;
      for (const [key, entries] of res ?? []) {
        for (const [id, fields] of entries) out.push(delivery(topicOf.get(key)!, key, id, 1, fields, req.maxBytes));
      }
    } else if (out.length === 0 && topicOf.size === 0) {
      await new Promise((r) => setTimeout(r, Math.min(req.blockMs, 100)));
    }
    if (req.signal.aborted) this.dropReader(req);
    if (acked) await acked;
    return out;
  }

  /**
   * A cluster read: one XREADGROUP per slot (one cannot span slots). Every slot is read without
   * blocking; when none has anything, the read blocks briefly on one slot, a different one each time.
   */
  private async readSlots(req: ReadRequest, reader: Reader, room: number, haveSome: boolean): Promise<[string, Entry[]][] | null> {
    const block = Math.min(req.blockMs, CLUSTER_BLOCK_MS);
    const { slots } = reader;
    if (slots.length === 1) return xread(req, reader, slots[0], room, haveSome ? 0 : block);
    const res: [string, Entry[]][] = [];
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

  /**
   * XAUTOCLAIM on every key, following each cursor to the end of the pending list over successive
   * passes (never restarting from 0-0 early, which would never reach entries past COUNT x 10).
   * The claim and the delivery counts come from one script (agentbusClaim), so an entry another
   * consumer acknowledges meanwhile is either not claimed or claimed with its count, never handed
   * out again as attempt 1; one with no pending record (none expected) is dropped, not delivered.
   * Ids Redis reports deleted (trimmed while pending) are acknowledged away; their count is logged.
   */
  private async claim(req: ReadRequest, reader: Reader, topicOf: Map<string, string>, out: Delivery[]): Promise<void> {
    let complete = true;
    for (const [key, topic] of topicOf) {
      let cursor = reader.cursors.get(key) ?? '0-0';
      for (;;) {
        const room = req.max - out.length;
        if (room <= 0) {
          complete = false;
          break;
        }
        const [next, entries, deleted, counts] = (await this.cmd.agentbusClaim(key, req.group, req.consumer, req.leaseMs, cursor, room)) as [string, Entry[], string[], number[]];
        const gone = [...deleted, ...entries.filter(([, f]) => f === null).map(([id]) => id)];
        if (gone.length) {
          await this.cmd.xack(key, req.group, ...gone);
          this.log.warn({ group: req.group, type: topic, count: gone.length }, 'pending entries were trimmed before delivery; cleared');
        }
        entries.forEach(([id, fields], i) => {
          if (fields !== null && counts[i] > 0) out.push(delivery(topic, key, id, Number(counts[i]), fields, req.maxBytes));
        });
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
   * Each read loop blocks on its own connection. Closing the loop unblocks it with CLIENT UNBLOCK
   * from the command connection, so a read Redis already served still returns its entries (a
   * disconnect would drop them, leaving them pending until claimIdleMs); the connection closes
   * after that last read.
   */
  private reader(req: ReadRequest): Reader {
    const id = `${req.group}\n${req.consumer}`;
    let r = this.readers.get(id);
    if (r) return r;
    const conn = (
      this.cluster
        ? (this.cmd as unknown as Cluster).duplicate([], { redisOptions: { ...(this.cmd as unknown as Cluster).options.redisOptions, maxRetriesPerRequest: null } })
        : this.cmd.duplicate({ maxRetriesPerRequest: null })
    ) as Redis;
    watchConnection(conn, this.log, 'redis reader connection', (err) => ({ group: req.group, consumer: req.consumer, connection: 'reader', ...this.connError(err) }));
    const clientId = () => {
      // A cluster reader is never unblocked (its block is short): no id to ask for.
      if (this.cluster) return Promise.resolve(-1);
      const p = conn.client('ID') as Promise<number>;
      p.catch(() => {}); // a connection closed meanwhile: nothing left to unblock
      return p;
    };
    const reader: Reader = { conn, cursors: new Map(), nextClaim: 0, clientId: clientId(), topics: null, topicOf: new Map(), streams: [], slots: [], turn: 0, waiting: null, woken: false };
    conn.on('ready', () => (reader.clientId = clientId()));
    this.readers.set(id, reader);
    req.signal.addEventListener('abort', () => {
      if (!this.cluster) void reader.clientId.then((cid) => this.cmd.client('UNBLOCK', cid)).catch(() => {});
    }, { once: true });
    return reader;
  }

  /**
   * CLIENT UNBLOCK of the consumer's blocked XREADGROUP: it returns nothing, as at its timeout.
   * The command may not have reached Redis yet (UNBLOCK answers 0): asked again shortly, while the
   * same read is in flight. With no XREADGROUP in flight, the next one does not block (the read
   * under way may have been built with the old topics). A cluster read blocks CLUSTER_BLOCK_MS at
   * most: left alone.
   */
  wakeRead(group: string, consumer: string): void {
    const r = this.readers.get(`${group}\n${consumer}`);
    if (!r || this.cluster) return;
    const read = r.waiting;
    if (!read) return void (r.woken = true);
    const attempt = (n: number): void =>
      void r.clientId
        .then((cid) => this.cmd.client('UNBLOCK', cid))
        .then((done) => {
          if (Number(done) === 0 && r.waiting === read && n < WAKE_TRIES) setTimeout(() => attempt(n + 1), 5);
        })
        .catch(() => {}); // the connection is gone: its read ends by itself
    attempt(1);
  }

  /** After the last read of a closed loop: its connection goes. */
  private dropReader(req: ReadRequest): void {
    const id = `${req.group}\n${req.consumer}`;
    const r = this.readers.get(id);
    if (!r) return;
    this.readers.delete(id);
    r.conn.disconnect();
  }

  async ack(group: string, ds: Delivery[]): Promise<void> {
    const keys = byKey(ds);
    if (keys.size === 1) {
      const [[key, ids]] = keys;
      await this.cmd.xack(key, group, ...ids);
      return;
    }
    const p = this.pipeline();
    for (const [key, ids] of keys) p.xack(key, group, ...ids);
    await execAll(p);
  }

  async renew(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    const p = this.pipeline();
    for (const [key, ids] of byKey(ds)) p.agentbusLease(key, group, consumer, '', '', ...ids);
    await execAll(p);
  }

  async release(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    // One script call per delivery (each keeps its own attempt count), all in one round trip.
    const p = this.pipeline();
    for (const d of ds) p.agentbusLease(keyOf(d), group, consumer, String(RELEASED_IDLE_MS), String(d.attempts), d.position);
    await execAll(p);
  }

  async countAttempt(group: string, d: Delivery): Promise<void> {
    // The delivery count is the attempt count; set it, owned by whoever holds the entry now.
    const owner = await this.owner(d, group);
    if (owner !== null) await this.cmd.agentbusLease(keyOf(d), group, owner, '', String(d.attempts + 1), d.position);
  }

  private async owner(d: Delivery, group: string): Promise<string | null> {
    const p = (await this.cmd.xpending(keyOf(d), group, d.position, d.position, 1)) as [string, string][];
    return p[0]?.[1] ?? null;
  }

  async deadLetter(group: string, d: Delivery, reason: string, error: string, stack?: string): Promise<void> {
    // The entry as stored, never re-serialised: an entry nested too deep for JSON.stringify (or any
    // event that cannot be) must still become a dead letter. Only a foreign entry decoded to an event
    // is stored as that envelope, so a retry (read back as an envelope) decodes the same way.
    const body = d.foreign && d.event ? (serialise(d.event) ?? d.raw) : d.raw;
    await this.cmd.agentbusDeadLetter(keyOf(d), this.keys.dlq(d.topic), this.keys.dlqCount(d.topic), group, d.position, reason, error, d.attempts, Date.now(), body, stack ?? '');
  }

  async range(topic: string, q: RangeQuery): Promise<Delivery[]> {
    const key = this.keys.stream(topic);
    const start = q.after !== null ? `(${checkId(q.after, 'after')}` : q.from === null ? '-' : 'position' in q.from ? checkId(q.from.position, 'from') : `${q.from.time}-0`;
    const end = q.to === null ? '+' : 'position' in q.to ? checkId(q.to.position, 'to') : `${q.to.time}-${MAX_SEQ}`;
    const entries = (await this.cmd.xrange(key, start, end, 'COUNT', q.limit)) as Entry[];
    return entries.map(([id, fields]) => delivery(topic, key, id, 0, fields, q.maxBytes));
  }

  async last(topic: string): Promise<string | null> {
    const [e] = (await this.cmd.xrevrange(this.keys.stream(topic), '+', '-', 'COUNT', 1)) as Entry[];
    return e?.[0] ?? null;
  }

  async seek(group: string, topic: string, from: StoreBound | 'earliest'): Promise<void> {
    // SETID names the last entry delivered: one before the first to deliver again.
    const id = from === 'earliest' ? '0' : 'position' in from ? before(checkId(from.position, 'from')) : from.time > 0 ? `${from.time - 1}-${MAX_SEQ}` : '0';
    try {
      await this.cmd.xgroup('SETID', this.keys.stream(topic), group, id);
    } catch (err) {
      if (String((err as Error).message).startsWith('NOGROUP')) {
        throw new NotFoundError('NOT_FOUND', `group ${JSON.stringify(group)} has never subscribed to ${JSON.stringify(topic)}`);
      }
      throw err;
    }
  }

  async dlqList(f: { group?: string; type?: string; limit: number }): Promise<DeadLetter[]> {
    return listDeadLetters(this.store, f.type ? [f.type] : await this.topics(), f, deadLetter);
  }

  async dlqGet(id: string): Promise<DeadLetter | null> {
    const ref = parseDlId(id);
    if (!ref) return null;
    const [e] = (await this.cmd.xrange(this.keys.dlq(ref.type), ref.entry, ref.entry)) as Entry[];
    return e ? deadLetter(ref.type, e[0], e[1] ?? []) : null;
  }

  async dlqRetry(ids: string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const dl = await this.dlqGet(id);
      if (!dl) continue;
      const retryKey = this.keys.retry(dl.type, dl.group);
      await this.cmd.xgroup('CREATE', retryKey, dl.group, '0', 'MKSTREAM').catch((err: Error) => {
        if (!err.message.startsWith('BUSYGROUP')) throw err;
      });
      n += Number(await this.cmd.agentbusRetryDeadLetter(this.keys.dlq(dl.type), retryKey, this.keys.dlqCount(dl.type), parseDlId(id)!.entry, dl.group));
    }
    return n;
  }

  async dlqPurge(ids: string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const ref = parseDlId(id);
      if (ref) n += Number(await this.cmd.agentbusPurgeDeadLetter(this.keys.dlq(ref.type), this.keys.dlqCount(ref.type), ref.entry));
    }
    return n;
  }

  async stats(): Promise<TopicStats[]> {
    return redisStats(this.store, await this.topics());
  }

  async trim(retention: { maxLen: number; maxAgeMs: number } | null, _dedupWindowMs: number, exact = false): Promise<number> {
    if (retention === null) return 0; // dedup markers expire by themselves (PX)
    const how = exact ? '=' : '~';
    const xtrim = (key: string, ...args: (string | number)[]) => this.cmd.call('XTRIM', key, ...args) as Promise<number>;
    let removed = 0;
    // Only topics this deployment publishes to. A stream agentbus merely reads (found under the
    // prefix, or subscribed to: `prefix: ''` consumes other programs' streams) belongs to whoever
    // writes it, and retention is not ours to apply to it. The published set is newer than the topics
    // set: a topic published before it existed is trimmed again once it is published again.
    for (const type of await this.cmd.smembers(this.keys.published)) {
      const key = this.keys.stream(type);
      if (retention.maxLen < Number.MAX_SAFE_INTEGER) removed += await xtrim(key, 'MAXLEN', how, retention.maxLen);
      if (retention.maxAgeMs < Number.MAX_SAFE_INTEGER) removed += await xtrim(key, 'MINID', how, `${Date.now() - retention.maxAgeMs}-0`);
    }
    return removed;
  }

  /** XGROUP DELCONSUMER on each of its keys where it holds nothing (it would drop what it holds). */
  async forget(group: string, consumer: string, topics: string[]): Promise<void> {
    await this.liveness.forget(group, consumer);
    for (const t of topics) {
      for (const key of [this.keys.stream(t), this.keys.retry(t, group)]) {
        const held = (await this.cmd.xpending(key, group, '-', '+', 1, consumer).catch(() => null)) as unknown[] | null;
        if (held !== null && held.length === 0) await this.cmd.xgroup('DELCONSUMER', key, group, consumer).catch(() => {});
      }
    }
  }

  async heartbeat(group: string, consumer: string): Promise<void> {
    await this.liveness.heartbeat(group, consumer);
  }

  async ping(): Promise<void> {
    await this.cmd.ping();
  }

  async close(): Promise<void> {
    for (const r of this.readers.values()) r.conn.disconnect();
    this.readers.clear();
    if (this.ownsClient) await this.cmd.quit().catch(() => this.cmd.disconnect());
  }
}

function delivery(topic: string, key: string, id: string, attempts: number, fields: string[] | null, maxBytes: number): Delivery {
  // Size first, from the reply's lengths: an entry past the limit is never parsed.
  const big = fields === null ? null : tooLarge(fields, maxBytes);
  if (big) return { topic, position: id, attempts, event: null, raw: big.raw, malformed: big.malformed, oversize: true, ref: key };
  // Our own entries are the hot path: told by their first field, decoded straight into the Delivery.
  const first = fields?.[0];
  if (first === FIELDS_MARKER || first === FLAT_MARKER) {
    const event = first === FIELDS_MARKER ? decodeFields(fields!) : decodeFlat(fields!);
    if (typeof event !== 'string') return new FieldsDelivery(topic, id, attempts, event, key, fields!);
  } else if (first === EVENT_FIELD && fields!.length === 2) {
    const event = decodeEvent(fields![1]);
    return typeof event === 'string'
      ? { topic, position: id, attempts, event: null, raw: fields![1], malformed: event, ref: key }
      : { topic, position: id, attempts, event, raw: fields![1], ref: key };
  }
  const d = decodeEntry(topic, key, id, fields);
  return d.event === null
    ? { topic, position: id, attempts, event: null, raw: d.raw, malformed: d.malformed, ref: key }
    : { topic, position: id, attempts, event: d.event, raw: d.raw, foreign: true, ref: key };
}

/**
 * A delivery of an entry of ours in the fields or flat layout. Its `raw` (the envelope as JSON, for
 * a dead letter) is made from the stored fields only when asked for: building it for every entry
 * would cost as much as decoding it. (A getter on each object literal instead cost more than the
 * decoding, measured; a copy made by spreading has no `raw`, which release() does not need.)
 */
class FieldsDelivery implements Delivery {
  constructor(
    readonly topic: string,
    readonly position: string,
    public attempts: number,
    public event: CloudEvent | null,
    readonly ref: string,
    private readonly fields: string[],
  ) {}
  get raw(): string {
    return envelopeText(this.fields);
  }
}

function serialise(event: unknown): string | null {
  try {
    return JSON.stringify(event);
  } catch {
    return null; // nested deeper than the stack allows
  }
}

/** XREADGROUP of new entries on `streams` (keys, then a '>' each); blockMs 0 does not block. */
function xread(req: ReadRequest, reader: Reader, streams: string[], count: number, blockMs: number): Promise<[string, Entry[]][] | null> {
  return (blockMs > 0
    ? reader.conn.xreadgroup('GROUP', req.group, req.consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...streams)
    : reader.conn.xreadgroup('GROUP', req.group, req.consumer, 'COUNT', count, 'STREAMS', ...streams)) as Promise<[string, Entry[]][] | null>;
}

const keyOf = (d: Delivery) => d.ref!;

function byKey(ds: Delivery[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const d of ds) {
    const ids = m.get(keyOf(d));
    if (ids) ids.push(d.position);
    else m.set(keyOf(d), [d.position]);
  }
  return m;
}

function fieldsOf(fields: (string | unknown)[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) o[String(fields[i])] = fields[i + 1] as string;
  return o;
}

function deadLetter(type: string, entry: string, fields: string[]): DeadLetter {
  const f = fieldsOf(fields);
  const event = decodeEvent(f.body ?? '');
  return {
    id: `${type}/${entry}`,
    group: f.group ?? '',
    type,
    position: f.position,
    event: typeof event === 'string' ? null : event,
    raw: typeof event === 'string' ? (f.body ?? '') : null,
    reason: f.reason ?? '',
    error: f.error ?? '',
    // Entries written before stacks were kept have no such field.
    ...(f.stack ? { stack: f.stack } : {}),
    attempts: Number(f.attempts),
    failedAt: isoTime(f.failed_at),
  };
}

/** Dead-letter ids are `<type>/<entry id>`: types cannot contain a slash. */
function parseDlId(id: string): { type: string; entry: string } | null {
  const i = id.lastIndexOf('/');
  if (i <= 0 || !/^\d+-\d+$/.test(id.slice(i + 1)) || id.slice(i + 1).split('-').some((p) => BigInt(p) > BigInt(MAX_SEQ))) return null;
  return { type: id.slice(0, i), entry: id.slice(i + 1) };
}

/** A stream id `<ms>[-<seq>]` whose parts each fit Redis' 64 bits unsigned. */
function checkId(position: string, name: string): string {
  if (!/^\d+(-\d+)?$/.test(position)) throw invalid('INVALID_OPTION', `invalid ${name} position ${JSON.stringify(position)}: a Redis position is a stream id (<ms>-<seq>)`);
  if (position.split('-').some((part) => BigInt(part) > BigInt(MAX_SEQ))) {
    throw invalid('INVALID_OPTION', `invalid ${name} position ${JSON.stringify(position)}: each part of a stream id is at most ${MAX_SEQ}`);
  }
  return position;
}

/** The stream id just before `id`. */
function before(id: string): string {
  const [ms, seq = '0'] = id.split('-');
  if (BigInt(seq) > 0n) return `${ms}-${BigInt(seq) - 1n}`;
  return BigInt(ms) > 0n ? `${BigInt(ms) - 1n}-${MAX_SEQ}` : '0';
}
