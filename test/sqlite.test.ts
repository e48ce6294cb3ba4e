import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Bus } from '../bus/contract.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { sqliteStateStore } from './helpers/sqlite.js';
import { conformance, quiet } from './conformance/index.js';

const path = join(mkdtempSync(join(tmpdir(), 'agentbus-test-')), 'bus.db');

conformance({
  name: 'sqlite file',
  create: (o) => createSqliteBus({ ...o, path }),
  features: { sharedAcrossProcesses: true, foreignFieldEntries: false, countsConsumers: true, countsDueQueries: true },
  store: {
    stateStore: () => sqliteStateStore(path),
    // An entry that is not a CloudEvents envelope, as a foreign writer or a damaged file would leave.
    injectMalformed: async (topic) => {
      const db = new Database(path);
      db.prepare('INSERT INTO events (topic, stored, body) VALUES (?, ?, ?)').run(topic, Date.now(), '{"not": "an envelope"');
      db.close();
    },
    injectEnvelope: async (topic, envelope) => {
      const db = new Database(path);
      db.prepare('INSERT INTO events (topic, stored, body) VALUES (?, ?, ?)').run(topic, Date.now(), envelope);
      db.close();
    },
    processOptions: { adapter: 'sqlite', path },
    // Statements on the due table through the bus' own connection (better-sqlite3 `verbose`).
    dueQueries: async (o) => {
      let n = 0;
      const db = new Database(path, { verbose: (sql) => void (/\bdue\b/.test(String(sql)) && n++) });
      const bus = await createSqliteBus({ ...o, database: db, logger: quiet });
      n = 0; // opening it checked the schema
      const others: Bus[] = [];
      const another = async () => (others.push(await createSqliteBus({ path, logger: quiet })), others.at(-1)!);
      return { bus, count: async () => n, another, close: async () => void (await Promise.all([bus, ...others].map((b) => b.close())), db.close()) };
    },
    consumerRecords: async (_topic, group) => {
      const db = new Database(path, { readonly: true });
      const { n } = db.prepare('SELECT COUNT(*) AS n FROM consumers WHERE grp = ?').get(group) as { n: number };
      db.close();
      return n;
    },
  },
});
