import Database from 'better-sqlite3';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { conformance } from './conformance/index.js';

// ':memory:' is private to its connection: each bus gets an injected database that the test can
// also write a malformed entry to (into the newest one, which the scenario just made).
let newest: Database.Database;
conformance({
  name: 'sqlite :memory:',
  create: (o) => createSqliteBus({ ...o, database: (newest = new Database(':memory:')) }),
  // Private to its connection: no other process can open it.
  features: { sharedAcrossProcesses: false, foreignFieldEntries: false, countsConsumers: true },
  store: {
    injectMalformed: async (topic) => void newest.prepare('INSERT INTO events (topic, stored, body) VALUES (?, ?, ?)').run(topic, Date.now(), '{"not": "an envelope"'),
    injectEnvelope: async (topic, envelope) => void newest.prepare('INSERT INTO events (topic, stored, body) VALUES (?, ?, ?)').run(topic, Date.now(), envelope),
    consumerRecords: async (_topic, group) => (newest.prepare('SELECT COUNT(*) AS n FROM consumers WHERE grp = ?').get(group) as { n: number }).n,
  },
});
