// Where one in-process SQLite hop's time goes, stage by stage, with a warm CPU and after a pause:
// hops one at a time (each publish once the last handler ran and a turn passed), PAUSES ms apart
// (default 0, 1 and 5: 5 ms is 200/s). Each stage is stamped in place (the publisher's event
// building and the store's write are wrapped for the run): building the event (create + encode),
// the publish path up to the transaction, the transaction's statements, its BEGIN + COMMIT (and
// the hand-over right after), the rest of the publish call, then commit -> handler (decode, read
// loop, scheduler, handler call). Medians in us; the first tenth of each pause's hops is dropped.
// node --expose-gc --import tsx bench/sqlite-hop-trace.ts   (HOPS=2000 per pause, PAUSES=0,1,5)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { SqliteStore } from '../adapters/sqlite/store.js';
import { Publisher } from '../bus/publish.js';
import { percentile, sample } from './util.js';

const HOPS = Number(process.env.HOPS || 2000);
const PAUSES = (process.env.PAUSES || '0,1,5').split(',').map(Number);
const now = () => performance.now();

/** Stamps of the hop in flight (NaN: not reached). */
const st = { start: 0, built: 0, write: 0, stmts: 0, written: 0, returned: 0 };
let tracing = false;

// The wrapped steps: Publisher.entry (build the event) and SqliteStore.write (the transaction, synchronous part).
const entry = (Publisher.prototype as unknown as { entry: (...a: unknown[]) => unknown }).entry;
(Publisher.prototype as unknown as { entry: (...a: unknown[]) => unknown }).entry = function (this: unknown, ...a: unknown[]) {
  const r = entry.apply(this, a);
  if (tracing) st.built = now();
  return r;
};
const write = SqliteStore.prototype.write;
SqliteStore.prototype.write = function <T>(this: SqliteStore, fn: () => T, after?: (result: T) => void): Promise<T> {
  const committed = after as ((result: unknown) => void) | undefined;
  if (!tracing) return write.call(this, fn, committed) as Promise<T>;
  st.write = now();
  const p = write.call(
    this,
    () => {
      const t = now();
      const r = fn();
      st.stmts = now() - t;
      return r;
    },
    committed,
  ) as Promise<T>;
  st.written = now();
  return p;
};

const dir = mkdtempSync(join(tmpdir(), 'agentbus-hop-trace-'));
const bus = await createSqliteBus({ path: join(dir, 'trace.db'), logger: pino({ level: 'silent' }) });
const type = 'bench.trace';
let handled!: (t: number) => void;
const sub = await bus.subscribe({ group: 'trace', types: [type], concurrency: 64 }, () => handled(now()));
const stages = ['build', 'to the transaction', 'statements', 'BEGIN + COMMIT', 'rest of publish()', 'commit -> handler', 'hop'] as const;
console.log(`| pause between hops | ${stages.join(' | ')} |`);
console.log(`|---|${stages.map(() => '---:').join('|')}|`);
// A warm-up round first (not printed): the path compiled and the tables past their first pages.
for (const [n, pause] of [[HOPS, -1], ...PAUSES.map((p) => [HOPS, p])]) {
  const rows: Record<(typeof stages)[number], number[]> = Object.fromEntries(stages.map((s) => [s, []])) as never;
  for (let i = 0; i < n; i++) {
    const done = new Promise<number>((r) => (handled = r));
    const data = sample(i);
    tracing = true;
    st.start = now();
    void bus.publish(type, data);
    st.returned = now();
    tracing = false;
    const at = await done;
    if (i >= n / 10) {
      rows.build.push(st.built - st.start);
      rows['to the transaction'].push(st.write - st.built);
      rows.statements.push(st.stmts);
      rows['BEGIN + COMMIT'].push(st.written - st.write - st.stmts);
      rows['rest of publish()'].push(st.returned - st.written);
      rows['commit -> handler'].push(at - st.returned);
      rows.hop.push(at - st.start);
    }
    await new Promise((r) => setImmediate(r));
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
  }
  if (pause < 0) continue;
  console.log(`| ${pause} ms | ${stages.map((s) => Math.round(percentile(rows[s], 50) * 1000)).join(' | ')} |`);
}
await sub.close();
await bus.close();
