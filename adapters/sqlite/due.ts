/**
 * Delayed publishes on SQLite (Driver.due): the `due` table (schema version 4), indexed on due
 * time. A move is one IMMEDIATE transaction that inserts each due row as an event and deletes it,
 * so movers in several processes on one file never move a row twice, and a process killed midway
 * leaves each row moved or due. Nothing due costs one index probe. A named row (version 5) is
 * unique by its name: a named append deletes the pending row of the name and inserts its own in
 * the append's transaction (events.ts), a cancel is one DELETE by name; a cancel's dedup marker is
 * a row of `dedup` under the topic CANCEL_TOPIC (not a type, so it meets no publish), its seq the result.
 */
import type { DriverDue, DueEntry, DueRecord } from '../../bus/driver.js';
import { delivery } from './read.js';
import type { SqliteStore } from './store.js';

/** The dedup table's topic for cancels' markers: a space, which no type contains. */
const CANCEL_TOPIC = ' cancel';

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

  async cancel(name: string, once: { source: string; id: string; windowMs: number } | null): Promise<boolean> {
    const st = this.st;
    const ds = st.dueStatements();
    // A read-only bus refuses it (write); a file opened for writing always has names (migrated to 5).
    if (ds === null || ds.dueDeleteName === null) return st.write(() => false);
    const deleteName = ds.dueDeleteName;
    return st.write(() => {
      const now = Date.now();
      if (once) {
        const seen = st.s.dedupGet.get(CANCEL_TOPIC, once.source, once.id) as { seq: number; expires: number } | undefined;
        if (seen && seen.expires > now) return seen.seq === 1;
      }
      const found = deleteName.run(name).changes > 0;
      if (once) st.s.dedupPut.run(CANCEL_TOPIC, once.source, once.id, found ? 1 : 0, now + once.windowMs);
      return found;
    });
  }

  async list(filter: { type: string | null; limit: number; maxBytes: number }): Promise<DueRecord[]> {
    const ds = this.st.dueStatements();
    if (ds === null) return [];
    const max = { max: filter.maxBytes };
    const rows = (filter.type === null ? ds.dueList.all(filter.limit, max) : ds.dueListTopic.all(filter.type, filter.limit, max)) as Array<{ id: number; topic: string; due_at: number; name: string | null; body: string; size: number }>;
    return rows.map((r) => ({ id: String(r.id), topic: r.topic, dueAt: r.due_at, name: r.name, event: delivery(r.topic, 0, 0, r.body, r.size, filter.maxBytes).event }));
  }

  async remove(ids: string[]): Promise<number> {
    const ds = this.st.dueStatements();
    const rows = ids.filter((i) => /^\d{1,15}$/.test(i)).map(Number);
    if (ds === null) return this.st.write(() => 0);
    return this.st.write(() => rows.reduce((n, id) => n + ds.dueDelete.run(id).changes, 0));
  }

  async counts(): Promise<Map<string, number>> {
    const ds = this.st.dueStatements();
    return new Map(ds === null ? [] : (ds.dueCounts.all() as { k: string; n: number }[]).map((r) => [r.k, r.n]));
  }
}
