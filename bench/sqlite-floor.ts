// The floor under the SQLite hop: the statements of one in-process hop run alone, with no bus
// around them, at the same offered load (1 ms ticks). Per event, as the bus does it: one IMMEDIATE
// transaction that appends the event and claims it for the waiting consumer (the statements of
// read.ts' hand-off), then, on the next setImmediate, the ack's transaction. Timed:
// the first transaction, from BEGIN to the end of COMMIT. Also the bare append (BEGIN, one INSERT,
// COMMIT), the least any store that commits each event can cost.
import Database from 'better-sqlite3';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { openSchema } from '../adapters/sqlite/schema.js';
import { prepare } from '../adapters/sqlite/statements.js';
import { pino } from 'pino';
import { nowMs, offer, sample } from './util.js';

export interface Floor {
  /** The hop's transaction: append, claim, commit (ms each). */
  hop: number[];
  /** BEGIN IMMEDIATE, one INSERT, COMMIT (ms each). */
  append: number[];
}

/** `windows` windows of `secs` seconds at `perSec` on a fresh file at `path`, after a discarded 1 s warm-up. */
export async function hopFloor(path: string, perSec: number, secs: number, windows: number): Promise<Floor> {
  const type = 'bench.floor';
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const sub = await bus.subscribe({ group: 'floor', types: [type] }, () => {});
  await sub.close();
  await bus.close();
  const db = new Database(path);
  openSchema(db);
  const s = prepare(db);
  const tx = db.transaction((fn: () => unknown) => fn()) as unknown as { immediate<T>(fn: () => T): T };
  const gid = (s.groupGet.get('floor') as { gid: number }).gid;
  const max = { max: 1024 * 1024 };
  const body = JSON.stringify({ specversion: '1.0', id: '0'.repeat(26), type, source: 'bench', time: new Date().toISOString(), data: { t: 0, ...sample(0) } });
  const out: Floor = { hop: [], append: [] };
  const run = async (n: number, keep: boolean, bare: boolean) =>
    offer(perSec, n, () => {
      const t0 = nowMs();
      let seq = 0;
      if (bare) tx.immediate(() => s.insertEvent.run(type, Date.now(), body));
      else {
        tx.immediate(() => {
          seq = Number(s.insertEvent.run(type, Date.now(), body).lastInsertRowid);
          const now = Date.now();
          s.available.all(gid, now, 128, max);
          for (const r of s.newSeqs.all('floor', type, 64) as number[]) s.pendingInsert.run(gid, r, type, 'c', now + 30_000, 1);
          s.cursorSet.run(seq, 'floor', type);
        });
      }
      if (keep) (bare ? out.append : out.hop).push(nowMs() - t0);
      if (!bare) setImmediate(() => tx.immediate(() => s.pendingDelete.run(gid, seq)));
    });
  for (const bare of [false, true]) {
    await run(perSec, false, bare);
    for (let w = 0; w < windows; w++) {
      global.gc?.();
      await run(perSec * secs, true, bare);
    }
  }
  db.close();
  return out;
}
