/**
 * What every part of the SQLite driver shares: the database and its statements, the transactions
 * (IMMEDIATE for every read-modify-write, retried on a busy lock), the wake-ups, and the lookups
 * of group ids, the newest sequence number and positions given by callers.
 */
import type { Database } from 'better-sqlite3';
import { invalid, NotFoundError } from '../../bus/errors.js';
import { prepare, prepareDue, prepareState, prepareWaits, type DueStatements, type Statements, type StateStatements, type StoredRow, type WaitStatements } from './statements.js';
import type { Wakeups } from './wakeups.js';

export class SqliteStore {
  readonly s: Statements;
  private readonly tx: { immediate<T>(fn: () => T): T; deferred<T>(fn: () => T): T };
  private readonly gids = new Map<string, number>();
  /**
   * When each consumer (`<gid>/<consumer>`) was last written as seen: reads and heartbeats write
   * it at most once a second (stats' liveness needs no more).
   */
  readonly seen = new Map<string, number>();
  /**
   * Set by the read path: called inside an append's transaction, with the rows appended, to serve
   * the reads waiting on this connection (read.ts); what it returns is called right after that
   * transaction commits. It throws HandOffFailed (read.ts) to roll the append back, to be run
   * again without it.
   */
  handOff: (stored: readonly StoredRow[]) => () => void = () => () => {};
  /** Set by the read path: whether a read waits on this connection (else an append keeps no rows for handOff). */
  serving: () => boolean = () => false;

  constructor(
    readonly db: Database,
    readonly wakeups: Wakeups,
    private readonly busyTimeoutMs: number,
    /** Opened with `readonly`: every write is refused with an error naming the option. */
    readonly readonly: boolean,
  ) {
    this.s = prepare(db);
    this.tx = db.transaction((fn: () => unknown) => fn()) as unknown as SqliteStore['tx'];
  }

  /**
   * Runs `fn` in an IMMEDIATE transaction: a deferred one that upgrades to a write while another
   * process writes fails with SQLITE_BUSY whatever the busy timeout. The connection's busy_timeout
   * is 0: SQLite's own busy handler sleeps 1, 2, 5, 10... ms and overshoots the other process' short
   * transactions, so a busy lock is retried from here every millisecond, without blocking the
   * event loop meanwhile. `committed` runs right after the commit, before anything else can run
   * (the append hands claimed rows to waiting reads there, so no abort can slip in between).
   */
  async write<T>(fn: () => T, committed?: (result: T) => void): Promise<T> {
    if (this.readonly) {
      throw invalid('INVALID_OPTION', `the SQLite bus on ${this.db.name} was opened with readonly: true: publish, subscribe, rewind, trim, dead-letter retry/purge and keyed state changes need a bus without it`);
    }
    const end = Date.now() + this.busyTimeoutMs;
    for (;;) {
      try {
        const result = this.tx.immediate(fn);
        this.wakeups.wrote();
        committed?.(result);
        return result;
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= end) throw err;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** `fn` on each item, all in one write transaction; none when there are no items. */
  async eachTx<T>(items: T[], fn: (item: T) => unknown): Promise<void> {
    if (items.length > 0) await this.write(() => items.forEach(fn));
  }

  /** A consistent snapshot for multi-statement reads (WAL: readers never wait for writers). */
  snapshot<T>(fn: () => T): T {
    return this.tx.deferred(fn);
  }

  /**
   * Keyed agents' statements, or null while the file has no such tables (an older version opened
   * read-only: it holds no state). Prepared once they exist.
   */
  stateStatements(): StateStatements | null {
    if (this.ss === null && (this.s.hasStateTables.get() as { n: number }).n === 2) this.ss = prepareState(this.db);
    return this.ss;
  }
  private ss: StateStatements | null = null;

  /** Delayed publishes' statements, or null while the file has no `due` table (an older version read-only). */
  dueStatements(): DueStatements | null {
    if (this.ds === null) {
      const { n } = this.s.hasDueTable.get() as { n: number };
      if (n > 0) this.ds = prepareDue(this.db, n === 2);
    }
    return this.ds;
  }
  private ds: DueStatements | null = null;

  /** Keyed handlers' wait statements, or null while the file has no `agent_wait` table (an older version read-only). */
  waitStatements(): WaitStatements | null {
    if (this.ws === null && (this.s.hasWaitTable.get() as { n: number }).n === 1) this.ws = prepareWaits(this.db);
    return this.ws;
  }
  private ws: WaitStatements | null = null;

  /** Waiting reads may have something to take now. */
  changed(): void {
    this.wakeups.emitter.emit('change');
  }

  /** A group removed (a reply topic's, Admin.dropTopic): its id and consumers' last writes are forgotten. */
  forgetGroup(group: string): void {
    const id = this.gids.get(group);
    this.gids.delete(group);
    if (id !== undefined) for (const key of this.seen.keys()) if (key.startsWith(`${id}/`)) this.seen.delete(key);
  }

  /** The group's integer id; subscribe creates a group before any other call can name it. */
  gid(group: string): number {
    let id = this.gids.get(group);
    if (id === undefined) {
      const row = this.s.groupGet.get(group) as { gid: number } | undefined;
      if (row === undefined) throw new NotFoundError('NOT_FOUND', `group ${JSON.stringify(group)} does not exist`);
      this.gids.set(group, (id = row.gid));
    }
    return id;
  }

  maxSeq(): number {
    return (this.s.maxSeq.get() as { seq: number | null }).seq ?? 0;
  }

  /** A position a caller gave: a SQLite sequence number. */
  seqOf(position: string, name: string): number {
    if (!/^\d+$/.test(position)) throw invalid('INVALID_OPTION', `invalid ${name} position ${JSON.stringify(position)}: a SQLite position is a sequence number (digits)`);
    if (!Number.isSafeInteger(Number(position))) {
      throw invalid('INVALID_OPTION', `invalid ${name} position ${JSON.stringify(position)}: a SQLite sequence number is at most ${Number.MAX_SAFE_INTEGER}`);
    }
    return Number(position);
  }
}
