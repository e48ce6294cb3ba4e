/** The SQLite adapter's entry point (`agentbus/sqlite`): its options, checked, and createSqliteBus, which opens the file and its schema. */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Bus } from '../../bus/contract.js';
import { busFromDriver } from '../../bus/engine.js';
import { ConnectionError, invalid } from '../../bus/errors.js';
import type { BusOptions } from '../../bus/contract.js';
import { defaultLogger } from '../../bus/logger.js';
import { BUS_OPTION_KEYS, resolveBusOptions } from '../../bus/options.js';
import { int, knownKeys, str } from '../../bus/validate.js';
import { DEFAULT_SQLITE_PATH } from './defaults.js';
import { SqliteDriver } from './driver.js';
import { DEFAULT_WAL_WARN_BYTES, SqlitePressure } from './pressure.js';
import { openSchema, SCHEMA_VERSION } from './schema.js';
import { wakeupsFor } from './wakeups.js';
import { BACKSTOP_PAGES, withCheckpoints } from './checkpoints.js';

export interface SqliteBusOptions extends BusOptions {
  /** Database file, created with its folder if missing; `:memory:` for a bus inside one process. Default `./data/agentbus.db`. */
  path?: string | undefined;
  /**
   * How often a waiting consumer looks for events written by other processes when the file's folder
   * cannot be watched (wakeups.ts); while it is watched, another process' commit wakes the consumer
   * at once and it looks only every max(pollMs, 1000) ms, as a safety net. Default 25 ms.
   */
  pollMs?: number | undefined;
  /** How long a write waits for another process' lock (SQLite busy_timeout). Default 5000 ms. */
  busyTimeoutMs?: number | undefined;
  /** An open better-sqlite3 database to use instead of opening `path`; the bus does not close it. */
  database?: Database.Database | undefined;
  /**
   * Open an existing agentbus file read-only, never creating or changing anything: stats, replay,
   * dead-letter listing and keyed state inspection work; publish, subscribe, rewind, trim,
   * dead-letter retry/purge and keyed state changes reject.
   * A missing file fails with CONNECTION_FAILED. Default false.
   */
  readonly?: boolean | undefined;
  /**
   * A WAL file larger than this is a warning (logged, see Store health): a checkpoint cannot finish
   * because a reader keeps an old snapshot. The bus also caps the WAL file kept after a checkpoint
   * at half of it (at most 16 MiB; `journal_size_limit`) so the warning clears once it is over.
   * Default 64 MiB.
   */
  walWarnBytes?: number | undefined;
}

export { DEFAULT_SQLITE_PATH };

/**
 * Opens (creating if needed) a SQLite-backed bus. Several processes may share one file. A file with
 * another application's tables is refused (CONNECTION_FAILED) and left untouched.
 */
export async function createSqliteBus(options: SqliteBusOptions = {}): Promise<Bus> {
  const { path: p, pollMs: pm, busyTimeoutMs: bt, database, readonly: ro, walWarnBytes: ww, ...common } = options;
  knownKeys('sqlite', options, ['path', 'pollMs', 'busyTimeoutMs', 'database', 'readonly', 'walWarnBytes', ...BUS_OPTION_KEYS]);
  resolveBusOptions(common); // refuse bad options before a file is opened
  const path = database ? database.name : str('path', p, DEFAULT_SQLITE_PATH);
  const pollMs = int('pollMs', pm, 25, 1, 60_000);
  const busyTimeoutMs = int('busyTimeoutMs', bt, 5000, 0, 600_000);
  const walWarnBytes = int('walWarnBytes', ww, DEFAULT_WAL_WARN_BYTES, 1024 ** 2, 2 ** 50);
  if (ro !== undefined && typeof ro !== 'boolean') throw invalid('INVALID_OPTION', `invalid readonly ${JSON.stringify(ro)}: expected true or false`);
  const readonly = ro === true;
  const memory = path === ':memory:';
  if (readonly && memory) throw invalid('INVALID_OPTION', 'readonly needs a database file: a :memory: database starts empty');
  if (readonly && !database && !existsSync(path)) {
    throw new ConnectionError('CONNECTION_FAILED', `no agentbus database at ${resolve(path)}; start a host or publish first (readonly creates nothing)`);
  }
  let db: Database.Database | undefined;
  let found: number | null;
  try {
    if (database) db = database;
    else if (readonly) db = new Database(path, { readonly: true, fileMustExist: true });
    else {
      if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
      db = new Database(path);
    }
    found = openSchema(db, readonly);
    // A WAL file keeps its largest size after a checkpoint unless capped: capped, the WAL warning
    // clears once the checkpoint that was held up completes.
    if (!readonly && !memory && !database) {
      db.pragma(`journal_size_limit = ${Math.min(16 * 1024 ** 2, Math.floor(walWarnBytes / 2))}`);
      db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`); // checkpoints run in a worker thread (checkpoints.ts)
    }
  } catch (err) {
    if (db && !database) db.close();
    throw new ConnectionError('CONNECTION_FAILED', `cannot open SQLite database ${JSON.stringify(path)}: ${(err as Error).message}`, { cause: err });
  }
  const file = memory ? null : resolve(path);
  const wakeups = file !== null && !readonly && !database ? withCheckpoints(wakeupsFor(file), file) : wakeupsFor(file);
  const driver = new SqlitePressure(db, file, walWarnBytes).watch(
    new SqliteDriver(db, wakeups, pollMs, busyTimeoutMs, database === undefined, readonly),
  );
  const log = common.logger ?? defaultLogger();
  const where = memory ? ':memory:' : resolve(path);
  if (found !== null && found !== SCHEMA_VERSION && !readonly) {
    log.info({ store: 'sqlite', path: where, from: found, to: SCHEMA_VERSION }, `SQLite schema of ${where} migrated from version ${found} to ${SCHEMA_VERSION}`);
  }
  // Info through a logger the caller passed (agentbus start passes its own); the default logger keeps it at debug.
  log[common.logger ? 'info' : 'debug']({ store: 'sqlite', path: where, readonly }, `store: SQLite ${where}${readonly ? ' (read-only)' : ''}`);
  return busFromDriver(driver, { ...common, logger: log });
}
