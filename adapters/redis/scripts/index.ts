/**
 * Every Lua script of the Redis store, by family: publish.ts (dedup publish), due.ts (delayed publishes), lease.ts (claim,
 * renew, release, count an attempt), dead-letters.ts, stats.ts, liveness.ts, state.ts (keyed
 * state) and waits.ts (keyed handlers' wait and step records). Each file declares its scripts with their KEYS/ARGV contract (script.ts);
 * `defineAllScripts` registers them on a client.
 */
import type { Client } from '../client.js';
import { addDeadLetter, countDeadLetterChunk, deadLetterCounts, purgeDeadLetter, retryDeadLetter, storeDeadLetterCounts } from './dead-letters.js';
import { claimExpired, releaseLease, renewLease, setAttempts } from './lease.js';
import { dropConsumer, heartbeat } from './liveness.js';
import { publishOnce } from './publish.js';
import { cancelNamed, moveDue, removeDue, scheduleNamed, scheduleOnce } from './due.js';
import { defineScripts } from './script.js';
import { commitStates, disownGroup, loadStates, ownGroup, stateSizes } from './state.js';
import { eraseKey, indexStatus, indexWaits, markScanned, matchWait, openWait, removeWaits, waitFields, waitKeys } from './waits.js';
import { countAfter, streamEnds } from './stats.js';

export const allScripts = [
  publishOnce,
  scheduleOnce,
  scheduleNamed,
  cancelNamed,
  removeDue,
  moveDue,
  claimExpired,
  renewLease,
  releaseLease,
  setAttempts,
  addDeadLetter,
  retryDeadLetter,
  purgeDeadLetter,
  deadLetterCounts,
  countDeadLetterChunk,
  storeDeadLetterCounts,
  streamEnds,
  countAfter,
  heartbeat,
  dropConsumer,
  ownGroup,
  disownGroup,
  loadStates,
  stateSizes,
  commitStates,
  openWait,
  matchWait,
  waitFields,
  eraseKey,
  removeWaits,
  waitKeys,
  indexWaits,
  indexStatus,
  markScanned,
] as const;

export function defineAllScripts(client: Client): void {
  defineScripts(client, allScripts);
}
