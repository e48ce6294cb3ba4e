import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { conformance } from './conformance/index.js';

const path = join(mkdtempSync(join(tmpdir(), 'agentbus-test-')), 'bus.db');

conformance({
  name: 'sqlite file',
  create: (o) => createSqliteBus({ ...o, path }),
  features: { sharedAcrossProcesses: true, foreignFieldEntries: false, countsConsumers: true },
  store: {
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
    consumerRecords: async (_topic, group) => {
      const db = new Database(path, { readonly: true });
      const { n } = db.prepare('SELECT COUNT(*) AS n FROM consumers WHERE grp = ?').get(group) as { n: number };
      db.close();
      return n;
    },
  },
});
