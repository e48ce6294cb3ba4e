/**
 * Delayed publishes on SQLite (Driver.due): the `due` table (schema version 4), indexed on due
 * time. A move is one IMMEDIATE transaction that inserts each due row as an event and deletes it,
 * so movers in several processes on one file never move a row twice, and a process killed midway
 * leaves each row moved or due. Nothing due costs one index probe.
 */
import type { DriverDue, DueEntry } from '../../bus/driver.js';
import type { SqliteStore } from './store.js';

export class SqliteDue implements DriverDue {
  constructor(private readonly st: SqliteStore) {}

  async move(now: number, max: number): Promise<{ moved: number; next: number | null; entries: DueEntry[] }> {
    const st = this.st;
    const ds = st.dueStatements();
    // Read-only (nothing of ours to write), or an older file read as it is: nothing to move.
    if (st.readonly || ds === null) return { moved: 0, next: null, entries: [] };
    // Nothing due: a read, no write lock taken.
    const first = (ds.dueNext.get() as { at: number | null }).at;
    if (first === null || first > now) return { moved: 0, next: first, entries: [] };
    const entries = await st.write(() => {
      const rows = ds.dueTake.all(now, max) as { id: number; topic: string; due_at: number; body: string }[];
      const stored = Date.now();
      for (const r of rows) {
        st.s.insertEvent.run(r.topic, stored, r.body);
        ds.dueDelete.run(r.id);
      }
      return rows.map((r) => ({ topic: r.topic, dueAt: r.due_at }));
    });
    if (entries.length > 0) st.changed();
    return { moved: entries.length, next: (ds.dueNext.get() as { at: number | null }).at, entries };
  }

  async counts(): Promise<Map<string, number>> {
    const ds = this.st.dueStatements();
    return new Map(ds === null ? [] : (ds.dueCounts.all() as { k: string; n: number }[]).map((r) => [r.k, r.n]));
  }
}
