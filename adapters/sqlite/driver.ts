/**
 * The SQLite store as a Driver. Every multi-row change is one transaction; every read-modify-write
 * is IMMEDIATE (store.ts). Wake-ups: an emitter inside the process, a watch of the WAL across
 * (wakeups.ts), a poll as the fallback. Each member of Driver is the part that does it: events.ts
 * (log: append, range, topics), groups.ts (groups and consumer liveness), read.ts (the read path),
 * leases.ts (the deliveries a consumer holds), dead-letters.ts, admin.ts (stats, trim, housekeeping,
 * ping), state.ts (keyed agents' state) and due.ts (delayed publishes); every SQL statement is in
 * statements.ts, the schema in schema.ts. This file only wires them.
 */
import type { Database } from 'better-sqlite3';
import type { Driver } from '../../bus/driver.js';
import { Admin } from './admin.js';
import { DeadLetters } from './dead-letters.js';
import { Events } from './events.js';
import { SqliteDue } from './due.js';
import { Groups } from './groups.js';
import { Leases } from './leases.js';
import { ReadPath } from './read.js';
import { SqliteState } from './state.js';
import { SqliteStore } from './store.js';
import type { Wakeups } from './wakeups.js';

export class SqliteDriver implements Driver {
  readonly log: Events;
  readonly groups: Groups;
  readonly reads: ReadPath;
  readonly leases: Leases;
  readonly deadLetters: DeadLetters;
  readonly admin: Admin;
  /** Keyed agents' owners and state (state.ts). */
  readonly state: SqliteState;
  /** Delayed publishes' due entries (due.ts). */
  readonly due: SqliteDue;

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
    const st = new SqliteStore(db, wakeups, busyTimeoutMs, readonly);
    this.log = new Events(st);
    this.groups = new Groups(st);
    this.reads = new ReadPath(st, pollMs);
    this.leases = new Leases(st);
    this.deadLetters = new DeadLetters(st);
    this.admin = new Admin(st, (topic) => this.log.forget(topic));
    this.state = new SqliteState(st);
    this.due = new SqliteDue(st);
  }

  /** Lets go of the file's wake-ups (and checkpoint worker: its connection closes first), then closes a database the bus opened. */
  async close(): Promise<void> {
    this.reads.close();
    await this.wakeups.release();
    if (this.ownsDb && this.db.open) this.db.close();
  }
}
