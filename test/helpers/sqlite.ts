import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteDriver } from '../../adapters/sqlite/driver.js';
import { openSchema } from '../../adapters/sqlite/schema.js';
import { wakeupsFor } from '../../adapters/sqlite/wakeups.js';
import type { StateStore } from '../../bus/state.js';

/**
 * The SQLite keyed-state store (adapters/sqlite/state.ts) on the database at `path` (`:memory:`: a
 * new one), through a driver and connection of its own (conformance's `stateStore` hook).
 */
export async function sqliteStateStore(path: string): Promise<{ store: StateStore; close(): Promise<void> }> {
  const memory = path === ':memory:';
  const db = new Database(path);
  openSchema(db);
  const driver = new SqliteDriver(db, wakeupsFor(memory ? null : resolve(path)), 25, 5000, true);
  return { store: driver.state, close: () => driver.close() };
}
