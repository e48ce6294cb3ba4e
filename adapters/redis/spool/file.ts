/**
 * The spool's SQLite file: one table of events in spool order, written in one transaction per
 * publish call (durable once it commits, as the SQLite adapter's files: WAL, synchronous NORMAL,
 * so a process killed at any point loses nothing committed), read from the head and deleted up to
 * a sequence number once Redis confirmed them. A lock file beside it (`<path>.lock`, holding the
 * pid) keeps a second live process off the same spool: two forwarders would interleave a topic.
 */
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConnectionError } from '../../../bus/errors.js';
import type { AppendEntry } from '../../../bus/driver.js';
import type { CloudEvent } from '../../../bus/event.js';

/** A table of its own, so a spool file is recognisably one (and may sit beside nothing else). */
const DDL = `CREATE TABLE IF NOT EXISTS spool (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  event TEXT NOT NULL,
  body TEXT NOT NULL,
  dedup_window_ms INTEGER NOT NULL,
  due_at INTEGER,
  spooled_at INTEGER NOT NULL,
  bytes INTEGER NOT NULL
)`;

/** One spooled event: its entry as the publish built it, and where it stands in the spool. */
export interface Spooled {
  seq: number;
  entry: AppendEntry;
  /** When it was spooled, epoch ms. */
  at: number;
  bytes: number;
}

interface Row {
  seq: number;
  topic: string;
  event: string;
  body: string;
  dedup_window_ms: number;
  due_at: number | null;
  spooled_at: number;
  bytes: number;
}

export class SpoolFile {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly lockPath: string;
  private readonly insert: Database.Statement;
  private readonly head: Database.Statement;
  private readonly removeTo: Database.Statement;
  private readonly addAll: (entries: AppendEntry[], at: number, sizes: number[]) => void;

  constructor(path: string) {
    this.path = resolve(path);
    this.lockPath = `${this.path}.lock`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      lock(this.lockPath, this.path);
    } catch (err) {
      if (err instanceof ConnectionError) throw err;
      throw new ConnectionError('CONNECTION_FAILED', `cannot open the spool ${JSON.stringify(this.path)}: ${(err as Error).message}`, { cause: err });
    }
    try {
      this.db = new Database(this.path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(DDL);
    } catch (err) {
      unlock(this.lockPath);
      throw new ConnectionError('CONNECTION_FAILED', `cannot open the spool ${JSON.stringify(this.path)}: ${(err as Error).message}`, { cause: err });
    }
    this.insert = this.db.prepare('INSERT INTO spool (topic, event, body, dedup_window_ms, due_at, spooled_at, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.head = this.db.prepare('SELECT * FROM spool ORDER BY seq LIMIT ?');
    this.removeTo = this.db.prepare('DELETE FROM spool WHERE seq <= ?');
    this.addAll = this.db.transaction((entries: AppendEntry[], at: number, sizes: number[]) => {
      entries.forEach((e, i) => this.insert.run(e.topic, JSON.stringify(e.event), e.body, e.dedupWindowMs, e.dueAt ?? null, at, sizes[i]));
    });
  }

  /** Size an entry counts for against maxBytes: its envelope and its stored body, in UTF-8 bytes. */
  static size(e: AppendEntry): number {
    return Buffer.byteLength(JSON.stringify(e.event)) + Buffer.byteLength(e.body);
  }

  /** Appends the entries at the tail, all or none (one transaction, committed on return). */
  add(entries: AppendEntry[], at: number, sizes: number[]): void {
    this.addAll(entries, at, sizes);
  }

  /** Up to `n` events from the head, oldest first. */
  first(n: number): Spooled[] {
    return (this.head.all(n) as Row[]).map((r) => ({
      seq: r.seq,
      at: r.spooled_at,
      bytes: r.bytes,
      entry: {
        topic: r.topic,
        event: JSON.parse(r.event) as CloudEvent,
        body: r.body,
        // Forwarded through the dedup check whatever the publish chose: a forward repeated after a
        // crash (forwarded, not yet deleted) is then stored once (within its window; a reply's is 0:
        // stored again, and its requester drops the second).
        dedup: true,
        dedupWindowMs: r.dedup_window_ms,
        ...(r.due_at === null ? {} : { dueAt: r.due_at }),
      },
    }));
  }

  /** Removes the head up to `seq`, inclusive. */
  remove(seq: number): void {
    this.removeTo.run(seq);
  }

  /** What the file holds now: events per topic, bytes, and when the oldest was spooled. */
  totals(): { topics: Map<string, number>; bytes: number; oldest: number | null } {
    const topics = new Map((this.db.prepare('SELECT topic, COUNT(*) AS n FROM spool GROUP BY topic').all() as Array<{ topic: string; n: number }>).map((r) => [r.topic, r.n]));
    const { bytes } = this.db.prepare('SELECT COALESCE(SUM(bytes), 0) AS bytes FROM spool').get() as { bytes: number };
    return { topics, bytes, oldest: this.oldest() };
  }

  /** When the event at the head was spooled; null when empty. */
  oldest(): number | null {
    const r = this.db.prepare('SELECT spooled_at FROM spool ORDER BY seq LIMIT 1').get() as { spooled_at: number } | undefined;
    return r?.spooled_at ?? null;
  }

  close(): void {
    this.db.close();
    unlock(this.lockPath);
  }
}

/** Spool files open in this process (its own lock file cannot tell two buses of one process apart). */
const OPEN = new Set<string>();

/** Takes `<path>.lock` for this process; a lock left by a process no longer alive (SIGKILLed) is taken over. */
function lock(lockPath: string, path: string): void {
  if (OPEN.has(path)) throw new ConnectionError('CONNECTION_FAILED', `the spool ${JSON.stringify(path)} is in use by another bus of this process: give each bus its own spool path`);
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      OPEN.add(path);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
    const pid = Number(readFileSync(lockPath, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new ConnectionError('CONNECTION_FAILED', `the spool ${JSON.stringify(path)} is in use by process ${pid} (${lockPath}): give each bus its own spool path`);
    }
    unlink(lockPath);
  }
  throw new ConnectionError('CONNECTION_FAILED', `cannot take the spool lock ${lockPath}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

function unlock(lockPath: string): void {
  OPEN.delete(lockPath.slice(0, -'.lock'.length));
  try {
    if (Number(readFileSync(lockPath, 'utf8').trim()) === process.pid) unlinkSync(lockPath);
  } catch {
    // already gone
  }
}

function unlink(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // another process took it over meanwhile
  }
}
