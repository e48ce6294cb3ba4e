/**
 * WAL checkpoints off the event loop. SQLite checkpoints inside the commit that takes the WAL past
 * `wal_autocheckpoint` pages (1000 by default): that commit copies the pages to the database file
 * and syncs both files, 3-6 ms measured on this project's machine, during which nothing else in the
 * process runs; at 5,000 events/s that is every fraction of a second, and the events waiting behind
 * it make the tail of the hop latency. Instead, a worker thread with its own connection runs a
 * PASSIVE checkpoint (it never blocks writers or readers) at most every CHECKPOINT_EVERY_MS while
 * this process writes, and none while it is idle; the bus' own connection keeps
 * BACKSTOP_PAGES as its automatic threshold, which it reaches only when the worker cannot keep up
 * or failed (then SQLite checkpoints in the commit as before).
 * The worker starts at the second write at least CHECKPOINT_EVERY_MS after the first, so a process
 * that writes once (a CLI publish) starts none. One worker per file in this process.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Wakeups } from './wakeups.js';

/** How often the worker checkpoints at most while this process writes. */
export const CHECKPOINT_EVERY_MS = 250;
/** The bus connection's wal_autocheckpoint: a checkpoint in the commit only past this many pages. */
export const BACKSTOP_PAGES = 4000;

/** The worker: a connection that checkpoints on each message; exits on 'close'. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
parentPort.on('message', (m) => {
  if (m === 'close') { db.close(); parentPort.close(); return; }
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
});
`;

interface Shared {
  users: number;
  /** When this process last wrote and asked for (or skipped) a checkpoint; 0: never. */
  last: number;
  worker: Worker | null;
  /** The worker failed to start or died: commits checkpoint at BACKSTOP_PAGES from then on. */
  failed: boolean;
}

const shared = new Map<string, Shared>();

/**
 * `wakeups` whose wrote() also schedules the file's checkpoints. release() lets go of both and,
 * for the file's last bus in this process, resolves once the worker's connection is closed: the
 * bus' connection then closes after it, and as the file's last one it checkpoints everything and
 * removes the WAL, as before the worker existed (a copy of the .db file alone stays complete).
 */
export function withCheckpoints(wakeups: Wakeups, path: string): Wakeups {
  let e = shared.get(path);
  if (e === undefined) shared.set(path, (e = { users: 0, last: 0, worker: null, failed: false }));
  e.users++;
  const entry = e;
  let released = false;
  return {
    emitter: wakeups.emitter,
    get watched() {
      return wakeups.watched;
    },
    wrote() {
      wakeups.wrote();
      wrote(entry, path);
    },
    async release() {
      wakeups.release();
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      shared.delete(path);
      const w = entry.worker;
      entry.worker = null;
      if (w === null) return;
      const exited = new Promise((r) => w.once('exit', r));
      w.ref(); // the process waits for its connection to close
      w.postMessage('close');
      await exited;
    },
  };
}

function wrote(e: Shared, path: string): void {
  const now = Date.now();
  if (now - e.last < CHECKPOINT_EVERY_MS || e.failed) return;
  const first = e.last === 0;
  e.last = now;
  if (first) return;
  e.worker ??= start(e, path);
  e.worker?.postMessage('checkpoint');
}

function start(e: Shared, path: string): Worker | null {
  try {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const w = new Worker(WORKER, { eval: true, workerData: { module, path } });
    w.unref(); // never what keeps the process alive
    w.on('error', () => (e.failed = true));
    w.on('exit', () => {
      if (e.worker === w) e.worker = null;
    });
    return w;
  } catch {
    e.failed = true;
    return null;
  }
}
