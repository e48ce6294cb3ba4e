/**
 * The SQLite bus' defaults that code outside the adapter needs (createBus, doctor) without loading
 * the adapter and its native module.
 */

/** Where the SQLite bus keeps its database when no path is given. */
export const DEFAULT_SQLITE_PATH = './data/agentbus.db';
