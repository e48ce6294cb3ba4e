/**
 * The Redis Streams store as a Driver: a stream per topic, a consumer group per group, XAUTOCLAIM
 * for deliveries whose lease ran out, the delivery count as the attempt count, dead letters in
 * `{stream}:dlq`, and a per-group retry stream through which a retried dead letter reaches its group
 * only. This class only routes each Driver call to the part that does it:
 * streams.ts (append, range), groups.ts, read.ts (the read path) over readers.ts (connections),
 * leases.ts, dead-letters.ts, admin.ts (topics, stats, trim, forget) and liveness.ts; the Lua
 * scripts are in scripts/, the key layout in keys.ts.
 */
import type { Logger } from 'pino';
import type { DeadLetter, TopicStats } from '../../bus/contract.js';
import type { AppendEntry, Delivery, Driver, RangeQuery, ReadRequest, StoreBound } from '../../bus/driver.js';
import type { CloudEvent } from '../../bus/event.js';
import { Admin } from './admin.js';
import { redisStore, type Client, type RedisStore } from './client.js';
import { DeadLetters } from './dead-letters.js';
import { Groups } from './groups.js';
import type { Keys } from './keys.js';
import { Layouts } from './layout.js';
import { Leases } from './leases.js';
import { Liveness } from './liveness.js';
import { ReadPath } from './read.js';
import { Readers } from './readers.js';
import { RedisState } from './state.js';
import { Streams, type ReplicatedAcks } from './streams.js';

export class RedisDriver implements Driver {
  private readonly s: RedisStore;
  private readonly streams: Streams;
  private readonly groups: Groups;
  private readonly readers: Readers;
  private readonly reads: ReadPath;
  private readonly leases: Leases;
  private readonly dead: DeadLetters;
  private readonly liveness: Liveness;
  private readonly admin: Admin;
  /** Keyed subscriptions' owners and per-key state (state.ts). */
  readonly state: RedisState;

  constructor(
    client: Client,
    keys: Keys,
    log: Logger,
    /** The bus opened the client (and so closes it); false for a client the caller passed. */
    private readonly ownsClient: boolean,
    /** Log fields for a connection error: where, and the message with any password scrubbed. */
    connError: (err: Error) => Record<string, unknown>,
    /** How each topic's entries are written (the `layout` option). */
    layouts: Layouts = new Layouts(undefined),
    /** `acks: 'replicated'` (see Streams); null: acknowledged by the master alone. */
    acks: ReplicatedAcks | null = null,
  ) {
    this.s = redisStore(client, keys);
    this.streams = new Streams(this.s, layouts, acks);
    this.groups = new Groups(this.s);
    this.liveness = new Liveness(this.s);
    this.leases = new Leases(this.s);
    this.admin = new Admin(this.s, this.liveness);
    this.dead = new DeadLetters(this.s, () => this.admin.topics());
    this.readers = new Readers(this.s, log, connError);
    this.state = new RedisState(this.s, (g, ds) => this.leases.ack(g, ds));
    this.reads = new ReadPath(this.s, this.readers, this.liveness, log, (g, ds) => this.leases.ack(g, ds), (g, ts, from) => this.groups.create(g, ts, from));
  }

  encode(event: CloudEvent, maxBytes: number): string {
    return this.streams.encode(event, maxBytes);
  }
  append(entries: AppendEntry[]): Promise<void> {
    return this.streams.append(entries);
  }
  range(topic: string, q: RangeQuery): Promise<Delivery[]> {
    return this.streams.range(topic, q);
  }
  last(topic: string): Promise<string | null> {
    return this.streams.last(topic);
  }

  createGroup(group: string, topics: string[], from: 'latest' | 'earliest'): Promise<number> {
    return this.groups.create(group, topics, from);
  }
  seek(group: string, topic: string, from: StoreBound | 'earliest'): Promise<void> {
    return this.groups.seek(group, topic, from);
  }

  read(req: ReadRequest): Promise<Delivery[]> {
    return this.reads.read(req);
  }
  wakeRead(group: string, consumer: string): void {
    this.readers.wake(group, consumer);
  }

  ack(group: string, ds: Delivery[]): Promise<void> {
    return this.leases.ack(group, ds);
  }
  renew(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    return this.leases.renew(group, consumer, ds);
  }
  release(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    return this.leases.release(group, consumer, ds);
  }
  countAttempt(group: string, d: Delivery): Promise<void> {
    return this.leases.countAttempt(group, d);
  }

  deadLetter(group: string, d: Delivery, reason: string, error: string, stack?: string): Promise<void> {
    return this.dead.add(group, d, reason, error, stack);
  }
  dlqList(f: { group?: string; type?: string; limit: number }): Promise<DeadLetter[]> {
    return this.dead.list(f);
  }
  dlqGet(id: string): Promise<DeadLetter | null> {
    return this.dead.get(id);
  }
  dlqRetry(ids: string[]): Promise<number> {
    return this.dead.retry(ids);
  }
  dlqPurge(ids: string[]): Promise<number> {
    return this.dead.purge(ids);
  }

  topics(): Promise<string[]> {
    return this.admin.topics();
  }
  stats(): Promise<TopicStats[]> {
    return this.admin.stats();
  }
  trim(retention: { maxLen: number; maxAgeMs: number } | null, _dedupWindowMs: number, exact = false): Promise<number> {
    return this.admin.trim(retention, exact);
  }
  forget(group: string, consumer: string, topics: string[]): Promise<void> {
    return this.admin.forget(group, consumer, topics);
  }
  heartbeat(group: string, consumer: string): Promise<void> {
    return this.liveness.heartbeat(group, consumer);
  }

  async ping(): Promise<void> {
    await this.s.cmd.ping();
  }

  async close(): Promise<void> {
    this.readers.close();
    if (this.ownsClient) await this.s.cmd.quit().catch(() => this.s.cmd.disconnect());
  }
}
