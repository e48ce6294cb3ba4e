/** The SQLite store's schema: its tables, its version history and the check that a file is agentbus' own. */
import type { Database } from 'better-sqlite3';

/**
 * Keyed agents' state (version 3; why each column: adapters/sqlite/state.ts). `group_owner` keeps a
 * group's row once it was ever owned, so its epoch survives every lease and is never reused;
 * `agent_state` has one row per (group, key), found by its key (WITHOUT ROWID: the row is the
 * index), and a partial index on the expiring ones for housekeeping.
 */
const STATE_DDL = `
CREATE TABLE IF NOT EXISTS group_owner (
  grp        TEXT PRIMARY KEY,
  consumer   TEXT,                       -- NULL: given up (disown), anyone may take it
  epoch      INTEGER NOT NULL,           -- +1 each time the group changes hands; commits carry it
  expires_at INTEGER NOT NULL            -- lease end, ms since epoch; free when <= now
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_state (
  grp        TEXT NOT NULL,
  key        TEXT NOT NULL,
  version    INTEGER NOT NULL,           -- +1 per commit of the key
  state      TEXT NOT NULL,              -- the state as JSON
  applied    TEXT NOT NULL,              -- last applied position per source stream, JSON object
  updated_at INTEGER NOT NULL,           -- ms since epoch of the last commit
  expires_at INTEGER,                    -- NULL: kept until removed; else invisible from then, deleted by trim
  PRIMARY KEY (grp, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agent_state_by_expiry ON agent_state (expires_at) WHERE expires_at IS NOT NULL;
`;

/**
 * Delayed publishes' due entries (version 4; adapters/sqlite/due.ts): each row becomes an event of
 * `topic` when `due_at` has passed, moved in one IMMEDIATE transaction that inserts the event and
 * deletes the row. The index on (due_at, id) makes "anything due?" one index probe. Version 5 adds
 * `name` (PublishOptions.name): unique among pending rows, so storing a named entry deletes the
 * pending one of that name in the same transaction, and a cancel is one indexed DELETE.
 */
const DUE_V4_DDL = `
CREATE TABLE IF NOT EXISTS due (
  id      INTEGER PRIMARY KEY,
  topic   TEXT    NOT NULL,
  due_at  INTEGER NOT NULL,              -- ms since epoch; moved into events once passed, never before
  body    TEXT    NOT NULL               -- the event's body as a publish would store it
);
CREATE INDEX IF NOT EXISTS due_by_time ON due (due_at, id);
`;
const DUE_DDL = `
CREATE TABLE IF NOT EXISTS due (
  id      INTEGER PRIMARY KEY,
  topic   TEXT    NOT NULL,
  due_at  INTEGER NOT NULL,              -- ms since epoch; moved into events once passed, never before
  body    TEXT    NOT NULL,              -- the event's body as a publish would store it
  name    TEXT                           -- NULL: unnamed; else unique among pending rows (version 5)
);
CREATE INDEX IF NOT EXISTS due_by_time ON due (due_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS due_by_name ON due (name) WHERE name IS NOT NULL;
`;

/**
 * Keyed handlers' durable waits (version 6; adapters/sqlite/state.ts, bus/keyed/waits.ts): one row
 * per `ctx.waitFor` call of a delivery being handled, removed when that delivery is committed, or
 * by housekeeping once `expires_at` (deadline + a margin) passed.
 */
const WAIT_DDL = `
CREATE TABLE IF NOT EXISTS agent_wait (
  grp        TEXT NOT NULL,
  id         TEXT NOT NULL,              -- derived from (group, delivery's event, ordinal of the wait)
  type       TEXT NOT NULL,              -- the awaited type
  key        TEXT NOT NULL,              -- the key of the handler waiting
  deadline   INTEGER NOT NULL,           -- ms since epoch, fixed at creation
  matched    TEXT,                       -- the matching event's envelope (JSON) once taken; NULL while waiting
  expires_at INTEGER NOT NULL,           -- deleted by housekeeping from then on
  PRIMARY KEY (grp, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agent_wait_by_expiry ON agent_wait (expires_at);
`;

/**
 * One file, WAL. `seq` is global and grows with every append, so it orders each topic and lets a new
 * group start "after everything so far" with one number (groups.start). It is a plain rowid, not
 * AUTOINCREMENT (20% slower appends, measured): a rowid is never reused as long as the newest row
 * survives, and retention never deletes a topic's newest event.
 */
const DDL = `
CREATE TABLE IF NOT EXISTS events (
  seq     INTEGER PRIMARY KEY,
  topic   TEXT    NOT NULL,
  stored  INTEGER NOT NULL,              -- ms since epoch when appended: replay by time, age retention
  body    TEXT    NOT NULL               -- the CloudEvents envelope as JSON
);
CREATE INDEX IF NOT EXISTS events_by_topic ON events (topic, seq);
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup (
  topic TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL,
  seq INTEGER NOT NULL, expires INTEGER NOT NULL,
  PRIMARY KEY (topic, source, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (
  gid   INTEGER PRIMARY KEY,             -- short key for pending rows (integer keys: ~45% cheaper, measured)
  grp   TEXT NOT NULL UNIQUE,
  start INTEGER NOT NULL                 -- seq a topic met later starts after
);
CREATE TABLE IF NOT EXISTS cursors (
  grp TEXT NOT NULL, topic TEXT NOT NULL, seq INTEGER NOT NULL,   -- last seq handed out
  PRIMARY KEY (grp, topic)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
  gid INTEGER NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL,
  consumer TEXT,                         -- NULL: released, anyone may take it
  deadline INTEGER NOT NULL,             -- lease end; takeable when <= now
  attempts INTEGER NOT NULL,             -- deliveries so far, survives crashes
  body TEXT,                             -- set for retried dead letters: survives trimming
  PRIMARY KEY (gid, seq)                 -- seq is global, so it names the topic's event too
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_by_deadline ON pending (gid, deadline);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  grp TEXT NOT NULL, topic TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
  reason TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at INTEGER NOT NULL,
  stack TEXT                             -- the thrown error's stack (version 2); NULL when none
);
CREATE INDEX IF NOT EXISTS dead_letters_by_group ON dead_letters (grp, topic);
CREATE TABLE IF NOT EXISTS consumers (
  grp TEXT NOT NULL, consumer TEXT NOT NULL, seen INTEGER NOT NULL,
  PRIMARY KEY (grp, consumer)
) WITHOUT ROWID;
${STATE_DDL}${DUE_DDL}${WAIT_DDL}`;

/**
 * Version history: 1, the first; 2 adds dead_letters.stack; 3 adds keyed agents' tables
 * (group_owner, agent_state); 4 adds delayed publishes' `due` table; 5 adds due.name (named delayed
 * events); 6 adds keyed handlers' waits (`agent_wait`). An older file is migrated in place when opened for writing
 * (MIGRATIONS), and read as it is when opened read-only: every query that reads dead letters
 * selects `*`, so the missing column reads as no stack, the state store reads a file without
 * its tables as holding no state (state.ts), one without `due` as having no due entries and one
 * without due.name as having no named ones (due.ts).
 */
export const SCHEMA_VERSION = 6;
/**
 * Each step takes a file from version `from` to `from + 1`; run in order, in one IMMEDIATE
 * transaction, before DDL. A step that only adds tables needs no SQL of its own: DDL's
 * CREATE ... IF NOT EXISTS adds them (2 -> 3, 5 -> 6). 3 -> 4 creates `due` as version 4 had it, so 4 -> 5
 * can add its column whatever version the file started at.
 */
const MIGRATIONS: Array<{ from: number; sql: string }> = [
  { from: 1, sql: 'ALTER TABLE dead_letters ADD COLUMN stack TEXT' },
  { from: 2, sql: '' },
  { from: 3, sql: DUE_V4_DDL },
  { from: 4, sql: 'ALTER TABLE due ADD COLUMN name TEXT' },
  { from: 5, sql: '' },
];
/** The oldest version this agentbus opens (migrating it when writing). */
const OLDEST_VERSION = 1;
/** Tables every agentbus file has; a file with other tables and not these belongs to someone else. */
const OWN_TABLES = ['events', 'pending', 'dead_letters'];

/**
 * Checks the file is agentbus' (or empty), then migrates an older version and creates what is
 * missing. Another application's file, or a newer agentbus version, is refused before anything is
 * written (journal_mode = WAL alone would rewrite its header).
 * `readonly`: checks only (an older version is read as it is); an empty file is refused as
 * "no agentbus database" and nothing is set.
 * Ends with busy_timeout 0: from then on the driver retries a busy lock itself (SqliteStore.write, store.ts).
 * Returns the version the file had (null: it was empty), which a migration changed.
 */
export function openSchema(db: Database, readonly = false): number | null {
  db.pragma('busy_timeout = 5000'); // several processes may open a new file at once
  let found = check(db);
  if (readonly) {
    if (found === null) throw new Error('it holds no agentbus database (it is empty): start a host or publish first');
  } else {
    if (db.name !== ':memory:' && db.name !== '') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.transaction(() => {
      // Again under the write lock: another process may have created or migrated the schema meanwhile.
      const version = (found = check(db));
      // An older file: ALTER first (DDL's CREATE ... IF NOT EXISTS leaves existing tables as they are).
      // A failed step rolls the whole transaction back, leaving the file at its old version.
      if (version !== null) for (const m of MIGRATIONS) if (m.from >= version) db.exec(m.sql);
      db.exec(DDL);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  }
  db.pragma('busy_timeout = 0');
  return found;
}

/**
 * The version of the agentbus schema the file holds (OLDEST_VERSION to SCHEMA_VERSION), null when
 * it is empty; throws for anything else.
 */
function check(db: Database): number | null {
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  if (tables.length === 0) return null;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (!OWN_TABLES.every((t) => tables.includes(t))) {
    const names = tables.length > 5 ? `${tables.slice(0, 5).join(', ')}, ...` : tables.join(', ');
    throw new Error(
      `it has ${tables.length} table${tables.length === 1 ? '' : 's'} of another application (${names}; user_version ${version}) and no agentbus schema: ` +
        'agentbus opens only its own files, leaving this one untouched; give it a new path',
    );
  }
  if (version < OLDEST_VERSION || version > SCHEMA_VERSION) {
    throw new Error(`schema version ${version}, this agentbus reads versions ${OLDEST_VERSION} to ${SCHEMA_VERSION}: use a new file or the matching agentbus`);
  }
  return version;
}
