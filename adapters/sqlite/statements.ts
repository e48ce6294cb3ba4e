/**
 * The SQLite store's statements table: every SQL statement the driver runs, prepared once per
 * database by `prepare`, by name, with the row shapes they return.
 */
import type { Database, Statement } from 'better-sqlite3';
import { OVERSIZE_KEPT_CHARS } from '../../bus/event.js';

/** Appends without a caller id go in INSERTs of this many rows (~35% faster, measured). */
export const ROWS_PER_INSERT = 50;

/** A prepared statement (better-sqlite3's, under a name declarations can refer to). */
export interface Prepared extends Statement<unknown[], unknown> {}
/** Every statement, by name. */
export type Statements = ReturnType<typeof prepare>;
/** The keyed agents' statements, by name. */
export type StateStatements = ReturnType<typeof prepareState>;

export interface PendingRow { topic: string; seq: number; attempts: number; body: string | null; size: number }
export interface Taken { topic: string; seq: number; attempts: number; body: string; size: number }
/** A row an append stored in `events`; `seq` 0 when the append does not know it (rows of a multi-row INSERT). */
export interface StoredRow { topic: string; seq: number; body: string }
/** `stack` is undefined on a version-1 file read as it is, null when the dead letter has none. */
export interface DlRow { id: number; grp: string; topic: string; seq: number; body: string; reason: string; error: string; stack?: string | null; attempts: number; failed_at: number }

/**
 * Selects a body as `body` and its UTF-8 size as `size`; a body over `@max` bytes only as its first
 * OVERSIZE_KEPT_CHARS characters. octet_length() reads the stored size without loading the value.
 */
const BODY = (col: string) =>
  `CASE WHEN octet_length(${col}) > @max THEN substr(${col}, 1, ${OVERSIZE_KEPT_CHARS}) ELSE ${col} END AS body, octet_length(${col}) AS size`;

export interface OwnerRow { consumer: string | null; epoch: number; expires_at: number }
export interface StateRow { key: string; version: number; state: string; applied: string; updated_at: number }

/**
 * Prepares every statement on `db` (keyed agents' state: prepareState). A LIMIT is written `? + 0`, never a bare `?`: SQLite (built with
 * STAT4, as better-sqlite3 is) reads a bare bound LIMIT when planning, so every new binding expired
 * the statement and each run prepared it again (measured: 15-30 us of the read path's 3-6 us queries).
 */
export function prepare(db: Database) {
  const p = (sql: string): Prepared => db.prepare(sql);
  return {
    insertEvent: p('INSERT INTO events (topic, stored, body) VALUES (?, ?, ?)'),
    insertMany: p(`INSERT INTO events (topic, stored, body) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?)').join(', ')}`),
    insertTopic: p('INSERT OR IGNORE INTO topics (name) VALUES (?)'),
    dedupGet: p('SELECT seq, expires FROM dedup WHERE topic = ? AND source = ? AND id = ?'),
    dedupPut: p('INSERT OR REPLACE INTO dedup (topic, source, id, seq, expires) VALUES (?, ?, ?, ?, ?)'),
    dedupExpire: p('DELETE FROM dedup WHERE expires <= ?'),
    topics: p('SELECT name FROM topics ORDER BY name'),
    // All topics, and those in a range of names (the reply topics: see Events.topics).
    topicCount: p('SELECT (SELECT COUNT(*) FROM topics) AS n, (SELECT COUNT(*) FROM topics WHERE name >= ? AND name < ?) AS r'),
    topicsStartingWith: p('SELECT name FROM topics WHERE substr(name, 1, ?) = ?'),
    maxSeq: p('SELECT MAX(seq) AS seq FROM events'),
    groupCreate: p('INSERT OR IGNORE INTO groups (grp, start) VALUES (?, ?)'),
    groupGet: p('SELECT gid, start FROM groups WHERE grp = ?'),
    cursorCreate: p('INSERT OR IGNORE INTO cursors (grp, topic, seq) VALUES (?, ?, ?)'),
    cursorGet: p('SELECT seq FROM cursors WHERE grp = ? AND topic = ?'),
    cursorSet: p('UPDATE cursors SET seq = ? WHERE grp = ? AND topic = ?'),
    cursorsAll: p('SELECT c.grp, c.topic, c.seq, g.gid FROM cursors c JOIN groups g ON g.grp = c.grp ORDER BY c.topic, c.grp'),
    available: p(`SELECT p.topic, p.seq, p.attempts, ${BODY('COALESCE(p.body, e.body)')}
                  FROM pending p LEFT JOIN events e ON e.seq = p.seq
                  WHERE p.gid = ? AND p.deadline <= ? ORDER BY p.deadline LIMIT ? + 0`),
    anyAvailable: p('SELECT 1 FROM pending WHERE gid = ? AND deadline <= ? LIMIT 1'),
    // Changes when another connection (any process) commits; this connection's own commits leave it.
    dataVersion: db.prepare('PRAGMA data_version').pluck() as Prepared,
    // Any of the topics (a JSON array) with an event past the group's cursor: one index probe a topic.
    anyNew: p('SELECT 1 FROM json_each(?) t JOIN cursors c ON c.grp = ? AND c.topic = t.value WHERE EXISTS (SELECT 1 FROM events e WHERE e.topic = c.topic AND e.seq > c.seq) LIMIT 1'),
    claim: p('UPDATE pending SET consumer = ?, deadline = ?, attempts = attempts + 1 WHERE gid = ? AND seq = ?'),
    newEvents: p(`SELECT seq, ${BODY('body')} FROM events WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ? + 0`),
    // The sequence numbers past the group's cursor on a topic (a hand-off has the bodies): the cursor's key, then the covering index.
    newSeqs: p('SELECT e.seq FROM cursors c JOIN events e ON e.topic = c.topic AND e.seq > c.seq WHERE c.grp = ? AND c.topic = ? ORDER BY e.seq LIMIT ? + 0').pluck() as Prepared,
    pendingInsert: p('INSERT OR REPLACE INTO pending (gid, seq, topic, consumer, deadline, attempts) VALUES (?, ?, ?, ?, ?, ?)'),
    pendingRetry: p('INSERT OR REPLACE INTO pending (gid, seq, topic, consumer, deadline, attempts, body) VALUES (?, ?, ?, NULL, 0, 0, ?)'),
    pendingDelete: p('DELETE FROM pending WHERE gid = ? AND seq = ?'),
    pendingCounts: p("SELECT gid || char(10) || topic AS k, COUNT(*) AS n FROM pending GROUP BY gid, topic"),
    renew: p('UPDATE pending SET deadline = ? WHERE gid = ? AND seq = ? AND consumer = ?'),
    release: p('UPDATE pending SET consumer = NULL, deadline = 0, attempts = ? WHERE gid = ? AND seq = ? AND consumer = ?'),
    countAttempt: p('UPDATE pending SET attempts = ? WHERE gid = ? AND seq = ?'),
    setAttempts: p('UPDATE pending SET attempts = ? WHERE gid = ? AND seq = ? AND consumer = ?'),
    consumerSeen: p('INSERT OR REPLACE INTO consumers (grp, consumer, seen) VALUES (?, ?, ?)'),
    consumersAlive: p('SELECT grp AS k, COUNT(*) AS n FROM consumers WHERE seen >= ? GROUP BY grp'),
    // A consumer not seen for the window and holding nothing: its process is gone.
    consumersExpire: p(`DELETE FROM consumers WHERE seen < ? AND NOT EXISTS
                        (SELECT 1 FROM pending p JOIN groups g ON g.gid = p.gid WHERE g.grp = consumers.grp AND p.consumer = consumers.consumer)`),
    consumerForget: p('DELETE FROM consumers WHERE grp = ? AND consumer = ?'),
    groupLastSeen: p('SELECT MAX(seen) AS seen FROM consumers WHERE grp = ?'),
    // A reply topic dropped whole (Admin.dropTopic): its group is named as the topic, and reads nothing
    // else (patterns never match a reply topic). Each by its key or an index: a scan of every group's
    // pending rows would hold the write lock for as long (50 ms at a million rows, measured).
    topicDrop: [
      p('DELETE FROM pending WHERE gid = (SELECT gid FROM groups WHERE grp = @topic)'),
      p('DELETE FROM cursors WHERE grp = @topic AND topic = @topic'),
      p('DELETE FROM dead_letters WHERE grp = @topic AND topic = @topic'),
      p('DELETE FROM dedup WHERE topic = @topic'),
      p('DELETE FROM events WHERE topic = @topic'),
      p('DELETE FROM topics WHERE name = @topic'),
      p('DELETE FROM consumers WHERE grp = @topic'),
      p('DELETE FROM groups WHERE grp = @topic'),
    ],
    dlList: p('SELECT * FROM dead_letters WHERE (@grp IS NULL OR grp = @grp) AND (@topic IS NULL OR topic = @topic) ORDER BY id LIMIT @limit'),
    dlGet: p('SELECT * FROM dead_letters WHERE id = ?'),
    dlDelete: p('DELETE FROM dead_letters WHERE id = ?'),
    dlCounts: p("SELECT grp || char(10) || topic AS k, COUNT(*) AS n FROM dead_letters GROUP BY grp, topic"),
    range: p(`SELECT seq, ${BODY('body')} FROM events WHERE topic = ? AND seq >= ? AND seq <= ? AND stored >= ? AND stored <= ? ORDER BY seq LIMIT ? + 0`),
    last: p('SELECT MAX(seq) AS seq FROM events WHERE topic = ?'),
    firstAtTime: p('SELECT MIN(seq) AS seq FROM events WHERE topic = ? AND stored >= ?'),
    lengths: p('SELECT topic AS k, COUNT(*) AS n FROM events GROUP BY topic'),
    lag: p('SELECT COUNT(*) AS n FROM events WHERE topic = ? AND seq > ?'),
    countUpTo: p('SELECT COUNT(*) AS n FROM events WHERE topic = ? AND seq <= ?'),
    nthNewest: p('SELECT seq FROM events WHERE topic = ? ORDER BY seq DESC LIMIT 1 OFFSET ?'),
    lastBefore: p('SELECT MAX(seq) AS seq FROM events WHERE topic = ? AND stored < ?'),
    trimTopic: p('DELETE FROM events WHERE topic = ? AND seq <= ?'),
    trimPending: p('DELETE FROM pending WHERE topic = ? AND seq <= ? AND body IS NULL'),
    // Keyed agents' tables (schema version 3) exist: 2 when they do.
    hasStateTables: p("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('agent_state', 'group_owner')"),
    // The due table (schema version 4) exists: 1 when it does; 2 when it has its name column too (version 5).
    hasDueTable: p("SELECT (SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'due') + (SELECT COUNT(*) FROM pragma_table_info('due') WHERE name = 'name') AS n"),
    // Keyed handlers' waits (schema version 6) exist: 1 when they do.
    hasWaitTable: p("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'agent_wait'"),
  };
}

/**
 * Delayed publishes' statements (due.ts), prepared on first use: an older file read-only has no `due`
 * table. `named`: the table has its name column (version 5); a version-4 file read-only lists its
 * rows as unnamed, and is never written (the name statements are not used on it).
 */
export function prepareDue(db: Database, named: boolean) {
  const p = (sql: string): Prepared => db.prepare(sql);
  const NAME = named ? 'name' : 'NULL AS name';
  const LIST = `SELECT id, topic, due_at, ${NAME}, ${BODY('body')} FROM due`;
  return {
    dueInsert: p('INSERT INTO due (topic, due_at, body) VALUES (?, ?, ?)'),
    dueInsertNamed: named ? p('INSERT INTO due (topic, due_at, body, name) VALUES (?, ?, ?, ?)') : null,
    dueDeleteName: named ? p('DELETE FROM due WHERE name = ?') : null,
    dueList: p(`${LIST} ORDER BY due_at, id LIMIT ? + 0`),
    dueListTopic: p(`${LIST} WHERE topic = ? ORDER BY due_at, id LIMIT ? + 0`),
    dueTake: p('SELECT id, topic, due_at, body FROM due WHERE due_at <= ? ORDER BY due_at, id LIMIT ?'),
    dueDelete: p('DELETE FROM due WHERE id = ?'),
    dueNext: p('SELECT MIN(due_at) AS at FROM due'),
    dueCounts: p('SELECT topic AS k, COUNT(*) AS n FROM due GROUP BY topic'),
  };
}
export type DueStatements = ReturnType<typeof prepareDue>;

/** Keyed handlers' wait statements (state.ts), prepared on first use: an older file read-only has no `agent_wait` table. */
export function prepareWaits(db: Database) {
  const p = (sql: string): Prepared => db.prepare(sql);
  return {
    waitOpen: p(`INSERT INTO agent_wait (grp, id, type, key, deadline, matched, expires_at) VALUES (@grp, @id, @type, @key, @deadline, NULL, @expires)
                 ON CONFLICT (grp, id) DO NOTHING`),
    waitGet: p('SELECT type, key, deadline, matched FROM agent_wait WHERE grp = @grp AND id = @id'),
    waitMatch: p('UPDATE agent_wait SET matched = @matched WHERE grp = @grp AND id = @id AND matched IS NULL'),
    waitRemove: p('DELETE FROM agent_wait WHERE grp = @grp AND id = @id'),
    // Erasure of a key (state.ts remove): its records, found in the group's range of the primary key.
    waitRemoveKey: p('DELETE FROM agent_wait WHERE grp = @grp AND key = @key RETURNING expires_at > @now AS live'),
    waitExpire: p('DELETE FROM agent_wait WHERE expires_at <= ?'),
    waitList: p(`SELECT id, key, type, deadline, matched IS NOT NULL AS matched, CASE WHEN @steps = 1 THEN matched END AS result FROM agent_wait
                 WHERE grp = @grp AND (@key IS NULL OR key = @key) AND expires_at > @now AND (substr(type, 1, 5) = 'step ') = (@steps = 1)
                 ORDER BY key, deadline, id LIMIT @limit`),
  };
}
export type WaitStatements = ReturnType<typeof prepareWaits>;

/**
 * The keyed agents' statements (state.ts), prepared on first use: a version-2 file opened read-only
 * has no tables to prepare them against. `@now` hides expired records (deleted later by trim).
 */
export function prepareState(db: Database) {
  const p = (sql: string): Prepared => db.prepare(sql);
  const LIVE = '(expires_at IS NULL OR expires_at > @now)';
  return {
    ownerGet: p('SELECT consumer, epoch, expires_at FROM group_owner WHERE grp = ?'),
    ownerInsert: p('INSERT INTO group_owner (grp, consumer, epoch, expires_at) VALUES (?, ?, 1, ?)'),
    ownerTake: p('UPDATE group_owner SET consumer = ?, epoch = epoch + 1, expires_at = ? WHERE grp = ?'),
    ownerRenew: p('UPDATE group_owner SET expires_at = ? WHERE grp = ?'),
    ownerDrop: p('UPDATE group_owner SET consumer = NULL, expires_at = 0 WHERE grp = ? AND consumer = ? AND epoch = ?'),
    // Every pending row of the group on the topics (JSON array), whoever holds it, as read.ts' `available` selects them.
    pendingOfGroup: p(`SELECT p.topic, p.seq, p.attempts, ${BODY('COALESCE(p.body, e.body)')}
                       FROM pending p LEFT JOIN events e ON e.seq = p.seq
                       WHERE p.gid = @gid AND p.topic IN (SELECT value FROM json_each(@topics)) ORDER BY p.topic, p.seq`),
    // The keys as a JSON array: one statement for any number of keys.
    stateLoad: p(`SELECT key, version, state, applied, updated_at FROM agent_state
                  WHERE grp = @grp AND key IN (SELECT value FROM json_each(@keys)) AND ${LIVE}`),
    stateGet: p(`SELECT key, version, state, applied, updated_at FROM agent_state WHERE grp = @grp AND key = @key AND ${LIVE}`),
    /** For commit's version check: an expired record counts as none (version 0). */
    stateVersion: p(`SELECT version, applied FROM agent_state WHERE grp = @grp AND key = @key AND ${LIVE}`),
    statePut: p(`INSERT OR REPLACE INTO agent_state (grp, key, version, state, applied, updated_at, expires_at)
                 VALUES (@grp, @key, @version, @state, @applied, @now, @expires)`),
    stateDelete: p('DELETE FROM agent_state WHERE grp = @grp AND key = @key'),
    /** Deletes one record, returning whether it was live (an expired one counts as not there). */
    stateRemove: p(`DELETE FROM agent_state WHERE grp = @grp AND key = @key RETURNING ${LIVE} AS live`),
    // From the first key, or after one: two statements, so the primary key seeks to `@after` (an
    // `@after IS NULL OR` would scan the group from its first key on every page).
    stateList: p(`SELECT key, version, octet_length(state) AS bytes, updated_at FROM agent_state
                  WHERE grp = @grp AND ${LIVE} ORDER BY key LIMIT @limit`),
    stateListAfter: p(`SELECT key, version, octet_length(state) AS bytes, updated_at FROM agent_state
                       WHERE grp = @grp AND key > @after AND ${LIVE} ORDER BY key LIMIT @limit`),
    // Distinct groups of agent_state by skipping from one group to the next on the primary key
    // (a scan of every record otherwise), kept when they have a live record; plus groups owned now.
    stateGroups: p(`WITH RECURSIVE g(grp) AS (
                      SELECT MIN(grp) FROM agent_state
                      UNION ALL SELECT (SELECT MIN(grp) FROM agent_state WHERE grp > g.grp) FROM g WHERE g.grp IS NOT NULL)
                    SELECT grp FROM g WHERE grp IS NOT NULL
                      AND EXISTS (SELECT 1 FROM agent_state a WHERE a.grp = g.grp AND (a.expires_at IS NULL OR a.expires_at > @now))
                    UNION SELECT grp FROM group_owner WHERE consumer IS NOT NULL AND expires_at > @now
                    ORDER BY 1`),
    stateExpire: p('DELETE FROM agent_state WHERE expires_at <= ?'),
  };
}
