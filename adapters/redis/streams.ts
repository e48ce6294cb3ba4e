/**
 * The topics' streams as the log on Redis (Driver.log): appending publishes (XADD, or the dedup
 * script for a caller-chosen id) in the topic's layout, reading stored entries back outside any
 * group (range, for replay; last), and which topics exist (discovery).
 */
import type { Cluster, Redis } from 'ioredis';
import type { AppendEntry, AppendHas, Delivery, DriverLog, RangeQuery } from '../../bus/driver.js';
import { appendHas, HAS_DUE, HAS_NAMED } from '../../bus/delivery.js';
import { NotReplicatedError } from '../../bus/errors.js';
import { isType, REPLY_PREFIX, type CloudEvent } from '../../bus/event.js';
import type { RedisStore, Sender } from './client.js';
import { delivery } from './delivery.js';
import { checkId, MAX_SEQ } from './keys.js';
import { encodeBody, entryFields, type Layouts } from './layout.js';
import type { Entry } from './scripts/lease.js';
import { publishOnce } from './scripts/publish.js';
import { dueMember, scheduleOnce } from './scripts/due.js';
import type { RedisDue } from './due.js';
import { ListedSet } from './listed-set.js';
import { sendEncoded } from './resp.js';
import { randomUUID } from 'node:crypto';

/**
 * An append's commands leave in writes of this many entries (the socket corked meanwhile): a write
 * per command cost redis-server about 2 µs more per event (bench/cpu.ts); the whole batch in one
 * write kept its strings reachable until the socket had written it all out, and 15 MB per 100,000
 * events were promoted (bench/redis-publish-gc.ts), 1-3 MB in writes of 32.
 */
const CORK_ENTRIES = 32;
/** How often topics() looks for streams other programs created. */
const SCAN_EVERY_MS = 10_000;

/** `acks: 'replicated'`: after each append, WAIT for this many replicas, at most this long. */
export interface ReplicatedAcks {
  replicas: number;
  timeoutMs: number;
}

export class Streams implements DriverLog {
  /** Topics registered (known, published) by this driver: registered once each. */
  private readonly knownTopics = new Set<string>();
  /** Topics this driver added to the due topics set (keys.dueTopics). */
  private readonly dueTopics = new Set<string>();
  /** The topics set (keys.topics), and the members last merged with the scan. */
  private readonly listed: ListedSet;
  private listedNames: readonly string[] | null = null;
  private scanned: { at: number; found: string[] } = { at: 0, found: [] };
  private scanning: Promise<void> | null = null;
  private merged: string[] | null = null;
  /**
   * DriverLog.overlapAppends: on one Redis an append's commands are written at the call, on the one
   * command connection, so Redis stores overlapping appends in call order. On a cluster a command can
   * be redirected (MOVED, ASK) and sent again after a later one: there each waits for the previous.
   */
  readonly overlapAppends: boolean;

  constructor(
    private readonly s: RedisStore,
    /** How each topic's entries are written (the `layout` option). */
    private readonly layouts: Layouts,
    /** Set for `acks: 'replicated'`; null: an append is done once the master stored it. */
    private readonly acks: ReplicatedAcks | null = null,
    /** Stores named delayed entries (they replace one on any topic: more than one command). */
    private readonly due: RedisDue | null = null,
  ) {
    this.listed = new ListedSet(s, s.keys.topics, SCAN_EVERY_MS, s.keys.topicsRemoved);
    this.overlapAppends = !s.cluster;
  }

  /**
   * DriverLog.appendsNow: on one Redis a lone publish's XADD is written inside the publish() call,
   * as a bare client's would be, instead of on the next setImmediate (0.08 ms at the median of a
   * publish -> handler hop at 1,000/s, up to 0.7 ms at its p99, measured with
   * bench/redis-latency-trace.ts: the poll phase's I/O ran first). The publishes that follow it in
   * the same turn go together on the next setImmediate without waiting for its reply (overlapAppends).
   * Not on a cluster, where they would wait for that reply (a round trip more for a burst).
   */
  appendsNow(): boolean {
    return this.overlapAppends;
  }

  /** A topic dropped (Admin.dropTopic): not listed from now on, and registered again if published again. */
  forget(topic: string): void {
    this.knownTopics.delete(topic);
    this.scanned = { ...this.scanned, found: this.scanned.found.filter((t) => t !== topic) };
    this.merged = null;
  }

  /** The body of an entry in its topic's layout (see layout.ts encodeBody). */
  encode(event: CloudEvent, maxBytes: number): string {
    return encodeBody(this.layouts.of(event.type), event, maxBytes);
  }

  /**
   * Every entry goes as plain commands, however many: ioredis writes each at once, in call order on
   * the one connection, and lets each command and its arguments go at its reply. A Pipeline kept the
   * whole batch (its commands, their encoded fields, their promises) until its last reply: at 1,000
   * entries a call, young-generation collections running while it waited for Redis promoted about
   * 1 KB per event (100 MB per 100,000, with two or three mark-compacts), and building it cost more
   * garbage than it saved even for small batches (it doubled GC pauses at 10k events/s in 1 ms
   * ticks). `has` (AppendHas) says whether to look for delayed and named entries at all.
   */
  append(entries: AppendEntry[], has: AppendHas = appendHas(entries)): Promise<void> {
    if (has === 0 && entries.length === 1 && this.acks === null && this.lone(entries[0])) {
      // One command, one reply: the append is the XADD itself (a lone publish's, the common one),
      // no async function around it. Its reply, the entry's id, is not the append's business.
      const e = entries[0];
      return sendEncoded<never>(this.s.cmd, 'xadd', [this.s.keys.stream(e.topic), '*', entryFields(this.layouts.of(e.topic), e.event, e.body)]);
    }
    return this.appendAll(entries, has);
  }

  private async appendAll(entries: AppendEntry[], has: AppendHas): Promise<void> {
    if (has & HAS_NAMED) {
      // Named delayed entries are stored one by one after the others (RedisDue.storeNamed).
      const named = entries.filter((e) => e.dueName !== undefined);
      const rest = entries.filter((e) => e.dueName === undefined);
      if (rest.length > 0) await this.appendAll(rest, HAS_DUE);
      if (!this.due) throw new Error('named delayed events need the due entries (RedisDue)');
      for (const e of named) {
        await this.due.storeNamed(e, entryFields(this.layouts.of(e.topic), e.event, e.body), !this.knownTopics.has(e.topic));
        this.knownTopics.add(e.topic);
      }
      if (this.acks) await this.replicated(named.length);
      return;
    }
    const due = (has & HAS_DUE) !== 0;
    if (entries.length === 1 && !due && this.lone(entries[0])) {
      // One command, one reply, awaited as it is (with acks: 'replicated', then its WAIT).
      const e = entries[0];
      await sendEncoded(this.s.cmd, 'xadd', [this.s.keys.stream(e.topic), '*', entryFields(this.layouts.of(e.topic), e.event, e.body)]);
      if (this.acks) await this.replicated(1);
      return;
    }
    const replies = new Replies();
    // Several entries' commands leave in a few writes (writev), not one each: the socket is corked
    // while they are issued, and uncorked every CORK_ENTRIES entries (one Redis; a cluster's
    // commands go to several connections).
    const socket = entries.length > 1 && !this.s.cluster ? (this.s.cmd as Redis).stream : undefined;
    const corked = socket?.writable === true;
    if (corked) socket!.cork();
    try {
      let n = 0;
      for (const e of entries) {
        this.send(this.s.cmd, e, replies);
        if (corked && ++n % CORK_ENTRIES === 0) {
          socket!.uncork();
          socket!.cork();
        }
      }
    } finally {
      if (corked) socket!.uncork();
    }
    await replies.all();
    // A reply topic is registered with every reply: its bus may have dropped it (closing) since the last one.
    for (const e of entries) if (!e.topic.startsWith(REPLY_PREFIX)) this.knownTopics.add(e.topic);
    if (due) for (const e of entries) if (e.dueAt !== undefined) this.dueTopics.add(e.topic);
    if (this.acks) await this.replicated(entries.length);
  }

  /**
   * WAIT on the connection the append went through: it returns once `replicas` replicas have
   * acknowledged every write this connection sent before it (these entries included), or at the
   * timeout with how many did. Fewer is a NotReplicatedError: the entries are on the master only.
   */
  private async replicated(n: number): Promise<void> {
    const { replicas, timeoutMs } = this.acks!;
    const got = Number(await this.s.cmd.wait(replicas, timeoutMs));
    if (got < replicas) {
      throw new NotReplicatedError(
        'NOT_REPLICATED',
        `${n} event(s) stored on the Redis master but acknowledged by ${got} of ${replicas} replica(s) within ${timeoutMs} ms (acks: 'replicated'): a failover could lose them; publishing again with the same id is deduplicated`,
      );
    }
  }

  /** Whether `e` is stored by one plain XADD and nothing else (send() would issue just that). */
  private lone(e: AppendEntry): boolean {
    return e.dueAt === undefined && !(e.dedup && e.dedupWindowMs > 0) && this.knownTopics.has(e.topic);
  }

  /**
   * Issues one entry's commands on the command connection, each written at the call: the dedup
   * script or XADD of the fields of its topic's layout (a delayed entry: the same fields into the
   * topic's due set, see scripts/due.ts), and, once per topic, its registration as a known topic and
   * as a published one (the topics retention trims). `replies` waits for their replies.
   */
  private send(to: Sender, e: AppendEntry, replies: Replies): void {
    const { keys } = this.s;
    const key = keys.stream(e.topic);
    const fields = entryFields(this.layouts.of(e.topic), e.event, e.body);
    if (e.dueAt !== undefined) {
      // The topic is named in the due topics set before its entry exists (the set never shrinks:
      // a mover never misses a due set), and the entry goes to the due set, not the stream.
      if (!this.dueTopics.has(e.topic)) replies.add(to.sadd(keys.dueTopics, e.topic));
      const member = dueMember(randomUUID(), fields);
      replies.add(
        e.dedup && e.dedupWindowMs > 0
          ? scheduleOnce.send(to, keys.due(e.topic), keys.dedup(e.topic, e.event.source, e.event.id), e.dedupWindowMs, e.dueAt, member)
          : to.zadd(keys.due(e.topic), e.dueAt, member),
      );
    } else {
      replies.add(
        e.dedup && e.dedupWindowMs > 0
          ? publishOnce.send(to, key, keys.dedup(e.topic, e.event.source, e.event.id), e.dedupWindowMs, fields)
          : to.xadd(key, '*', fields),
      );
    }
    if (!this.knownTopics.has(e.topic)) {
      replies.add(to.sadd(keys.topics, e.topic));
      replies.add(to.sadd(keys.published, e.topic));
    }
  }

  async range(topic: string, q: RangeQuery): Promise<Delivery[]> {
    const key = this.s.keys.stream(topic);
    const start = q.after !== null ? `(${checkId(q.after, 'after')}` : q.from === null ? '-' : 'position' in q.from ? checkId(q.from.position, 'from') : `${q.from.time}-0`;
    const end = q.to === null ? '+' : 'position' in q.to ? checkId(q.to.position, 'to') : `${q.to.time}-${MAX_SEQ}`;
    const entries = (await this.s.cmd.xrange(key, start, end, 'COUNT', q.limit)) as Entry[];
    return entries.map(([id, fields]) => delivery(topic, key, id, 0, fields, q.maxBytes));
  }

  async last(topic: string): Promise<string | null> {
    const [e] = (await this.s.cmd.xrevrange(this.s.keys.stream(topic), '+', '-', 'COUNT', 1)) as Entry[];
    return e?.[0] ?? null;
  }

  /**
   * Known topics: those published or subscribed through agentbus (a set), plus streams under the
   * prefix that only other programs write, found by SCAN ... TYPE stream at most every SCAN_EVERY_MS
   * (a SCAN walks the whole keyspace). Pattern consumers ask every 100 ms: the set is read again
   * only when its size (SCARD, O(1)) changed, or every SCAN_EVERY_MS (ListedSet); one SCAN runs at a time.
   */
  async topics(): Promise<string[]> {
    const names = await this.listed.read();
    if (names !== this.listedNames) {
      this.listedNames = names;
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
    this.merged ??= [...new Set([...names, ...this.scanned.found])].sort();
    return [...this.merged];
  }

  /** Driver.log.registered: SSCAN of the topics set (one slot on a cluster: its hash tag is {agentbus}). */
  async registered(prefix: string): Promise<string[]> {
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, names] = await this.s.cmd.sscan(this.s.keys.topics, cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      found.push(...names);
    } while (cursor !== '0');
    return [...new Set(found)];
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
}

/**
 * Waits for the replies to an append's commands: all() resolves once every one answered, or rejects
 * with the first error once every one answered (as a Pipeline's exec() did: a failed append has
 * settled all its commands when the caller hears of it). It holds nothing of a command: a command,
 * its arguments and its reply are let go as soon as Redis answered it, where a Pipeline kept all its
 * commands and their arguments (the whole batch's encoded fields) until the last reply, long enough
 * for young-generation collections to promote them (about 100 MB per 100,000 events published 1,000
 * a call).
 */
class Replies {
  private left = 1;
  private failed = false;
  private error: unknown = undefined;
  private done: ((err?: unknown) => void) | null = null;
  private readonly one = (): void => {
    if (--this.left === 0) this.settle();
  };
  private readonly bad = (err: unknown): void => {
    if (!this.failed) {
      this.failed = true;
      this.error = err;
    }
    this.one();
  };

  add(reply: unknown): void {
    this.left++;
    (reply as Promise<unknown>).then(this.one, this.bad);
  }

  all(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.done = (err) => (this.failed ? reject(err) : resolve());
      this.one();
    });
  }

  private settle(): void {
    this.done?.(this.error);
  }
}
