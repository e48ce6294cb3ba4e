/**
 * The Redis Streams store as a Driver: a stream per topic, a consumer group per group, XAUTOCLAIM
 * for deliveries whose lease ran out, the delivery count as the attempt count, dead letters in
 * `{stream}:dlq`, and a per-group retry stream through which a retried dead letter reaches its group
 * only. Each member of Driver is the part that does it: streams.ts (log: append, range, topics),
 * groups.ts over liveness.ts, read.ts (the read path) over readers.ts (connections), leases.ts,
 * dead-letters.ts, admin.ts (stats, trim, ping), state.ts (keyed subscriptions' state) and due.ts
 * (delayed publishes); the
 * Lua scripts are in scripts/, the key layout in keys.ts. This file only wires them together.
 */
import type { Logger } from 'pino';
import type { Driver } from '../../bus/driver.js';
import { Admin } from './admin.js';
import { closeConnection, redisStore, type Client, type RedisStore } from './client.js';
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
import { RedisDue } from './due.js';

export class RedisDriver implements Driver {
  readonly log: Streams;
  readonly groups: Groups;
  readonly reads: ReadPath;
  readonly leases: Leases;
  readonly deadLetters: DeadLetters;
  readonly admin: Admin;
  /** Keyed subscriptions' owners and per-key state (state.ts). */
  readonly state: RedisState;
  /** Delayed publishes' due sets and their mover (due.ts). */
  readonly due: RedisDue;
  private readonly s: RedisStore;
  private readonly readers: Readers;

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
    /** With a spool: the connection the log (appends) goes through, which fails fast while Redis is down (spool/index.ts); closed with the driver. */
    private readonly publishClient: Client | null = null,
  ) {
    this.s = redisStore(client, keys);
    const liveness = new Liveness(this.s);
    this.due = new RedisDue(this.s);
    // With a spool, appends (named delayed events' included) go through the fail-fast connection.
    const published = publishClient ? redisStore(publishClient, keys) : this.s;
    this.log = new Streams(published, layouts, acks, publishClient ? new RedisDue(published) : this.due);
    this.groups = new Groups(this.s, liveness);
    this.leases = new Leases(this.s);
    this.admin = new Admin(this.s, () => this.log.topics(), (topic) => this.log.forget(topic));
    this.deadLetters = new DeadLetters(this.s, () => this.log.topics());
    this.readers = new Readers(this.s, log, connError);
    this.state = new RedisState(this.s, (g, ds) => this.leases.ack(g, ds));
    this.reads = new ReadPath(this.s, this.readers, liveness, log, this.leases, this.groups);
  }

  async close(): Promise<void> {
    this.readers.close();
    // Neither waits for a Redis that does not answer (closeConnection): a bus closing in an outage closes at once.
    await Promise.all([this.publishClient && closeConnection(this.publishClient), this.ownsClient && closeConnection(this.s.cmd)]);
  }
}
