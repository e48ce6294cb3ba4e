/**
 * Wake-ups of the SQLite store, one set per database file in this process, shared by every bus on
 * that file:
 * - 'change': a bus in this process wrote something a waiting read may take (emitted by the store);
 *   a publish wakes the consumers of every bus on the file at once.
 * - 'wal': the file's `-wal` changed, so some process may have committed (every commit in WAL mode
 *   writes it). The file's folder is watched with fs.watch (inotify on Linux, FSEvents/kqueue on
 *   macOS): a consumer in another process wakes within about a millisecond instead of at its next
 *   poll. A waiting read answers it with a cheap check (read.ts), since this process' own commits
 *   and other groups' events change the WAL too.
 * The folder is watched rather than the `-wal` file because SQLite deletes and creates that file
 * again as connections come and go. When it cannot be watched (fs.watch failed or reported an
 * error), `watched` is false and waiting reads poll every `pollMs` as before.
 * A `:memory:` database is its own: no other bus or process shares it, nothing is watched.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { EventEmitter } from 'eventemitter3';

export interface Wakeups {
  /** Emits 'change' after a write in this process that may give a waiting read something; 'wal' on a change to the file's WAL. */
  readonly emitter: EventEmitter;
  /** Whether 'wal' is emitted: the file's folder is being watched (false for `:memory:`, or when watching failed). */
  readonly watched: boolean;
  /** This bus is done with it; the last one to release a file's wake-ups removes them (and stops the watch). Idempotent. */
  release(): void;
}

interface Shared {
  emitter: EventEmitter;
  users: number;
  watcher: FSWatcher | null;
}

const shared = new Map<string, Shared>();
let memoryCount = 0;

/** The wake-ups of the file at `path` (resolved), or of a new `:memory:` database when null. */
export function wakeupsFor(path: string | null): Wakeups {
  const key = path ?? `:memory:${++memoryCount}`;
  let entry = shared.get(key);
  if (entry === undefined) {
    const emitter = new EventEmitter();
    entry = { emitter, users: 0, watcher: path === null ? null : watchWal(path, emitter) };
    shared.set(key, entry);
  }
  entry.users++;
  const e = entry;
  let released = false;
  return {
    emitter: e.emitter,
    get watched() {
      return e.watcher !== null;
    },
    release() {
      if (released) return;
      released = true;
      if (--e.users > 0) return;
      shared.delete(key);
      e.watcher?.close();
      e.watcher = null;
    },
  };
}

/**
 * Emits 'wal' on every change to `<path>-wal` reported for the file's folder; null when the folder
 * cannot be watched. The watch does not keep the process alive. A later watch error (the folder
 * removed, an inotify queue overflow) closes it and sets the entry unwatched: reads poll again.
 */
function watchWal(path: string, emitter: EventEmitter): FSWatcher | null {
  const wal = `${basename(path)}-wal`;
  let w: FSWatcher;
  try {
    w = watch(dirname(path), { persistent: false }, (_event, name) => {
      // No name (some platforms): any change in the folder may be a commit.
      if (name === null || name === wal) emitter.emit('wal');
    });
  } catch {
    return null;
  }
  w.on('error', () => {
    w.close();
    const entry = [...shared.values()].find((s) => s.watcher === w);
    if (entry) entry.watcher = null;
    emitter.emit('wal'); // waiting reads look once more, then poll
  });
  return w;
}
