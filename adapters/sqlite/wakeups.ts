/**
 * In-process wake-ups of the SQLite store: one emitter per database file, shared by every bus on
 * that file in this process, so a publish wakes the consumers of another bus at once (other
 * processes are seen by polling). A `:memory:` database is its own: no other bus shares it.
 */
import { EventEmitter } from 'eventemitter3';

export interface Wakeups {
  /** Emits 'change' after a write that may give a waiting read something to take. */
  readonly emitter: EventEmitter;
  /** This bus is done with it; the last one to release a file's emitter removes it. Idempotent. */
  release(): void;
}

const shared = new Map<string, { emitter: EventEmitter; users: number }>();
let memoryCount = 0;

/** The wake-ups of the file at `path` (resolved), or of a new `:memory:` database when null. */
export function wakeupsFor(path: string | null): Wakeups {
  const key = path ?? `:memory:${++memoryCount}`;
  const entry = shared.get(key) ?? { emitter: new EventEmitter(), users: 0 };
  entry.users++;
  shared.set(key, entry);
  let released = false;
  return {
    emitter: entry.emitter,
    release() {
      if (released) return;
      released = true;
      if (--entry.users === 0) shared.delete(key);
    },
  };
}
