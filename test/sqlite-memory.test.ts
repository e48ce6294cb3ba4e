import Database from 'better-sqlite3';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { sqliteStateStore } from './helpers/sqlite.js';
import { conformance, quiet } from './conformance/index.js';

// ':memory:' is private to its connection: each bus gets an injected database that the test can
// also write a malformed entry to (into the newest one, which the scenario just made).
let newest: Database.Database;
conformance({
  name: 'sqlite :memory:',
  create: (o) => createSqliteBus({ ...o, database: (newest = new Database(':memory:')) }),
  // Private to its connection: no other process can open it.
  features: { sharedAcrossProcesses: false, foreignFieldEntries: false, countsConsumers: true, countsDueQueries: true },
  store: {
    // A :memory: database of its own: the scenarios using it need no bus on the same store.
    stateStore: () => sqliteStateStore(':memory:'),
    injectMalformed: async (topic) => void newest.prepare('INSERT INTO events (topic, stored, body) VALUES (?, ?, ?)').run(topic, Date.now(), '{"not": "an envelope"'),
    injectEnvelope: async (topic, envelope) => void newest.prepare('INSERT INTO events (topic, stored, body) VALUES (?, ?, ?)').run(topic, Date.now(), envelope),
    // Statements on the due table through the bus' connection (better-sqlite3 `verbose`).
    dueQueries: async (o) => {
      let n = 0;
      const db = new Database(':memory:', { verbose: (sql) => void (/\bdue\b/.test(String(sql)) && n++) });
      const bus = await createSqliteBus({ ...o, database: db, logger: quiet });
      n = 0; // opening it created the schema
      return { bus, count: async () => n, close: async () => void (await bus.close(), db.close()) };
    },
    sameStore: (o) => createSqliteBus({ ...o, database: newest }),
    consumerRecords: async (_topic, group) => (newest.prepare('SELECT COUNT(*) AS n FROM consumers WHERE grp = ?').get(group) as { n: number }).n,
  },
});
