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
 * again as connections come and go (its real folder: SQLite follows a symlinked path). When it
 * cannot be watched (fs.watch failed or reported an error), or the watch stays deaf to this
 * process' own first commit for PROOF_MS (some network or virtual-machine file systems report
 * nothing), `watched` is false and waiting reads poll every `pollMs` as before.
 * A `:memory:` database is its own: no other bus or process shares it, nothing is watched.
 */
import { realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { EventEmitter } from 'eventemitter3';

export interface Wakeups {
  /** Emits 'change' after a write in this process that may give a waiting read something; 'wal' on a change to the file's WAL. */
  readonly emitter: EventEmitter;
  /** Whether 'wal' is emitted: the file's folder is being watched (false for `:memory:`, or when watching failed). */
  readonly watched: boolean;
  /** This process committed to the file: until the watch has reported one commit, it must report this one within PROOF_MS. */
  wrote(): void;
  /** This bus is done with it; the last one to release a file's wake-ups removes them (and stops the watch). Idempotent. */
  release(): void | Promise<void>;
}

/** How long the watch may stay silent after this process' first commit before it counts as deaf. */
export const PROOF_MS = 2000;

interface Shared {
  emitter: EventEmitter;
  users: number;
  watcher: FSWatcher | null;
  /** The watch reported a change after one of this process' commits. */
  proven: boolean;
  /** Running while a commit of this process waits for the watch to report it. */
  proof: NodeJS.Timeout | null;
}

const shared = new Map<string, Shared>();
let memoryCount = 0;

/** The wake-ups of the file at `path` (resolved), or of a new `:memory:` database when null. */
export function wakeupsFor(path: string | null): Wakeups {
  const key = path ?? `:memory:${++memoryCount}`;
  let entry = shared.get(key);
  if (entry === undefined) {
    const emitter = new EventEmitter();
    entry = { emitter, users: 0, watcher: null, proven: false, proof: null };
    if (path !== null) entry.watcher = watchWal(path, entry);
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
    wrote() {
      if (e.proven || e.proof !== null || e.watcher === null) return;
      e.proof = setTimeout(() => {
        e.proof = null;
        if (!e.proven) unwatch(e);
      }, PROOF_MS);
      e.proof.unref();
    },
    release() {
      if (released) return;
      released = true;
      if (--e.users > 0) return;
      shared.delete(key);
      if (e.proof !== null) clearTimeout(e.proof);
      e.watcher?.close();
      e.watcher = null;
    },
  };
}

/**
 * Emits 'wal' on every change to the file's WAL reported for its folder; null when the folder
 * cannot be watched. The watch does not keep the process alive. A later watch error (the folder
 * removed, an inotify queue overflow) ends it: reads poll again.
 */
function watchWal(path: string, e: Shared): FSWatcher | null {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // not there yet: as given
  }
  const wal = `${basename(real)}-wal`;
  try {
    const w = watch(dirname(real), { persistent: false }, (_event, name) => {
      // No name (some platforms): any change in the folder may be a commit.
      if (name !== null && name !== wal) return;
      e.proven = true;
      e.emitter.emit('wal');
    });
    w.on('error', () => unwatch(e));
    return w;
  } catch {
    return null;
  }
}

/** Stops watching; waiting reads look once more, and their next waits poll. */
function unwatch(e: Shared): void {
  if (e.watcher === null) return;
  e.watcher.close();
  e.watcher = null;
  e.emitter.emit('wal');
}
