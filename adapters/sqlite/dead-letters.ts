/**
 * Dead letters on SQLite (Driver.deadLetters): the dead_letters table. Moving a delivery there (with its pending row
 * deleted in the same transaction), listing, reading, retrying (back to its group only, with its
 * own copy of the body) and purging them.
 */
import type { Statement } from 'better-sqlite3';
import type { DeadLetter } from '../../bus/contract.js';
import { isoTime, type Delivery, type DriverDeadLetters } from '../../bus/driver.js';
import { decodeEvent } from '../../bus/event.js';
import type { DlRow } from './statements.js';
import type { SqliteStore } from './store.js';

export class DeadLetters implements DriverDeadLetters {
  /** Prepared on first use: a read-only version-1 file (see schema.ts) has no `stack` column to prepare it against. */
  private insert: Statement | null = null;

  constructor(private readonly st: SqliteStore) {}

  async add(group: string, d: Delivery, reason: string, error: string, stack?: string): Promise<void> {
    await this.st.write(() => {
      this.insert ??= this.st.db.prepare('INSERT INTO dead_letters (grp, topic, seq, body, reason, error, stack, attempts, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      this.insert.run(group, d.topic, Number(d.position), d.raw, reason, error, stack ?? null, d.attempts, Date.now());
      this.st.s.pendingDelete.run(this.st.gid(group), Number(d.position));
    });
  }

  async list(f: { group?: string; type?: string; limit: number }): Promise<DeadLetter[]> {
    return (this.st.s.dlList.all({ grp: f.group ?? null, topic: f.type ?? null, limit: f.limit }) as DlRow[]).map(deadLetter);
  }

  async get(id: string): Promise<DeadLetter | null> {
    const r = this.row(id);
    return r ? deadLetter(r) : null;
  }

  async retry(ids: string[]): Promise<number> {
    let n = 0;
    await this.st.write(() => {
      for (const id of ids) {
        const r = this.row(id);
        if (!r) continue;
        // Back to this group only, with its own copy of the body so trimming cannot lose it.
        this.st.s.pendingRetry.run(this.st.gid(r.grp), r.seq, r.topic, r.body);
        this.st.s.dlDelete.run(r.id);
        n++;
      }
    });
    this.st.changed();
    return n;
  }

  async purge(ids: string[]): Promise<number> {
    let n = 0;
    await this.st.eachTx(ids.filter((id) => /^\d+$/.test(id)), (id) => (n += this.st.s.dlDelete.run(Number(id)).changes));
    return n;
  }

  /** A dead letter's row by its id (digits; anything else names none). */
  private row(id: string): DlRow | undefined {
    return /^\d+$/.test(id) ? (this.st.s.dlGet.get(Number(id)) as DlRow | undefined) : undefined;
  }
}

function deadLetter(r: DlRow): DeadLetter {
  const event = decodeEvent(r.body);
  return {
    id: String(r.id),
    group: r.grp,
    type: r.topic,
    position: String(r.seq),
    event: typeof event === 'string' ? null : event,
    raw: typeof event === 'string' ? r.body : null,
    reason: r.reason,
    error: r.error,
    ...(typeof r.stack === 'string' ? { stack: r.stack } : {}),
    attempts: r.attempts,
    failedAt: isoTime(r.failed_at),
  };
}
