/**
 * The SQLite store as a Driver. Every multi-row change is one transaction; every read-modify-write
 * is IMMEDIATE (store.ts). Wake-ups: an emitter inside the process, a poll across. This class only
 * routes each Driver call to the part that does it: events.ts (append, range), groups.ts (groups
 * and the deliveries they hold), read.ts (the read path), dead-letters.ts and admin.ts (topics,
 * stats, trim, liveness); every SQL statement is in statements.ts, the schema in schema.ts.
 */
import type { Database } from 'better-sqlite3';
import type { DeadLetter, TopicStats } from '../../bus/contract.js';
import type { AppendEntry, Delivery, Driver, RangeQuery, ReadRequest, StoreBound } from '../../bus/driver.js';
import { Admin } from './admin.js';
import { DeadLetters } from './dead-letters.js';
import { Events } from './events.js';
import { Groups } from './groups.js';
import { ReadPath } from './read.js';
import { SqliteState } from './state.js';
import { SqliteStore } from './store.js';
import type { Wakeups } from './wakeups.js';

export class SqliteDriver implements Driver {
  private readonly st: SqliteStore;
  private readonly events: Events;
  private readonly groups: Groups;
  private readonly reads: ReadPath;
  private readonly dead: DeadLetters;
  private readonly admin: Admin;
  /** Keyed agents' owners and state (state.ts). */
  readonly state: SqliteState;

  constructor(
    private readonly db: Database,
    /** This file's in-process wake-ups, released on close. */
    private readonly wakeups: Wakeups,
    pollMs: number,
    busyTimeoutMs: number,
    /** The bus opened the database (and so closes it); false for a database the caller passed. */
    private readonly ownsDb: boolean,
    /** Opened with `readonly`: every write is refused with an error naming the option. */
    readonly = false,
  ) {
    this.st = new SqliteStore(db, wakeups, busyTimeoutMs, readonly);
    this.events = new Events(this.st);
    this.groups = new Groups(this.st);
    this.reads = new ReadPath(this.st, pollMs);
    this.dead = new DeadLetters(this.st);
    this.admin = new Admin(this.st);
    this.state = new SqliteState(this.st);
  }

  append(entries: AppendEntry[]): Promise<void> {
    return this.events.append(entries);
  }
  range(topic: string, q: RangeQuery): Promise<Delivery[]> {
    return this.events.range(topic, q);
  }
  last(topic: string): Promise<string | null> {
    return this.events.last(topic);
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
    this.reads.wake(group, consumer);
  }

  ack(group: string, ds: Delivery[]): Promise<void> {
    return this.groups.ack(group, ds);
  }
  renew(group: string, consumer: string, ds: Delivery[], leaseMs: number): Promise<void> {
    return this.groups.renew(group, consumer, ds, leaseMs);
  }
  release(group: string, consumer: string, ds: Delivery[]): Promise<void> {
    return this.groups.release(group, consumer, ds);
  }
  countAttempt(group: string, d: Delivery): Promise<void> {
    return this.groups.countAttempt(group, d);
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
  forget(group: string, consumer: string): Promise<void> {
    return this.admin.forget(group, consumer);
  }
  heartbeat(group: string, consumer: string): Promise<void> {
    return this.admin.heartbeat(group, consumer);
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  /** Closes a database the bus opened, and lets go of the file's wake-ups. */
  async close(): Promise<void> {
    if (this.ownsDb && this.db.open) this.db.close();
    this.wakeups.release();
  }
}
