/**
 * Durable steps of keyed handlers (`ctx.step(name, fn)`, README "Durable steps"): the result of a
 * piece of the handler's own work (a model call, an HTTP call) is recorded in the store before
 * `step` returns it, so a later run of the handler for the same delivery (a crash, a SIGTERM
 * give-back, a lost lease, a retry after a later failure, on any host) gets the recorded result at
 * the same step without calling `fn` again.
 *
 * A step is a wait record (StateStore.openWait/matchWait, as waits.ts) at the next ordinal of the
 * run's durable calls, the counter ctx.waitFor uses too, so the record ids are the ones
 * handler-call.ts hands the commit for removal. Its type is `step <name>` (a space: no event type has one, so a
 * step never passes for a wait), its `matched` the JSON `{"v":result}` (no `v`: undefined). The
 * record is opened before `fn` runs and filled when `fn` resolves; a run that finds it filled
 * returns it. At-least-once: a crash between `fn` resolving and the record being stored calls `fn`
 * again on the next run. Its deadline is MAX_WAIT_MS ahead, so a record of a delivery never
 * committed (dead-lettered) outlives every wait of the same run; it expires WAIT_RECORD_TTL_MS
 * after that deadline.
 */
import type { CloudEvent } from '../event.js';
import { invalid, misuse, OwnershipLostError } from '../errors.js';
import type { StateStore } from '../state.js';
import { describe } from '../thrown.js';
import { MAX_WAIT_MS, outOfOrder, STEP, WAIT_RECORD_TTL_MS, waitId } from './waits.js';

/** Longest step name. */
export const MAX_STEP_NAME = 200;

/** What the steps need of their consumer. */
export interface StepsHost {
  readonly group: string;
  readonly store: StateStore;
  /** The subscription's maxStateBytes: the largest recorded result (as JSON). */
  readonly maxStateBytes: number;
}

/** Refuses a bad `ctx.step` call before it takes an ordinal. */
export function checkStep(name: unknown, fn: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_STEP_NAME) {
    throw misuse(`invalid ctx.step name ${typeof name === 'string' ? `of ${name.length} characters` : describe(name)}: expected a string of 1-${MAX_STEP_NAME} characters`);
  }
  if (typeof fn !== 'function') throw misuse(`invalid ctx.step ${JSON.stringify(name)} fn ${describe(fn)}: expected a function () => result`);
}

/**
 * `value` as a step records it (`{"v":value}`; `{}` for undefined), refused when it is not JSON data
 * (notJson) or its JSON is over `maxBytes`.
 */
export function encodeStep(name: string, value: unknown, maxBytes: number): string {
  const bad = notJson(value, '', false, new Set());
  if (bad !== null) {
    throw misuse(`ctx.step ${JSON.stringify(name)}: its result is not JSON data: ${bad}; return strings, finite numbers, booleans, null, arrays and plain objects (a Date as date.toISOString(), a Map as Object.fromEntries(map)); nothing was recorded`);
  }
  const json = JSON.stringify(value === undefined ? {} : { v: value });
  if (json.length * 3 > maxBytes && Buffer.byteLength(json) > maxBytes) {
    throw invalid('PAYLOAD_TOO_LARGE', `ctx.step ${JSON.stringify(name)}: its result is ${Buffer.byteLength(json)} bytes as JSON, over maxStateBytes ${maxBytes}; nothing was recorded`);
  }
  return json;
}

/** Deepest nesting of a step's result (JSON itself has no limit; this keeps the check off the stack's). */
export const MAX_STEP_DEPTH = 1000;

/**
 * Where `v` stops being JSON data, as `a Map at .cache` (null when it is JSON data): what JSON.stringify
 * would change silently (a Map or Set to {}, NaN to null, a Date to a string, a class instance to a
 * plain object without its methods, a function dropped) is refused, so every run, the first one
 * too, gets what the handler returned. `undefined` is allowed as the whole result and as an object
 * property (dropped, as a missing property reads), not in an array (it would read null). A plain
 * object is one whose prototype is null or a root prototype (Object.prototype of any realm: JSON
 * parsed in a vm context is plain too). `seen`: the objects on the path here (a cycle).
 */
function notJson(v: unknown, at: string, inArray: boolean, seen: Set<object>): string | null {
  const where = at === '' ? '' : ` at ${at}`;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? null : `${v}${where}`;
  if (v === undefined) return inArray ? `undefined${where}` : null;
  if (typeof v !== 'object') return `a ${typeof v}${where}`;
  if (seen.has(v)) return `a cycle${where}`;
  if (seen.size >= MAX_STEP_DEPTH) return `nesting deeper than ${MAX_STEP_DEPTH}${where}`;
  seen.add(v);
  try {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const bad = notJson(v[i], `${at}[${i}]`, true, seen);
        if (bad !== null) return bad;
      }
      return null;
    }
    const proto = Object.getPrototypeOf(v) as object | null;
    if (proto !== null && Object.getPrototypeOf(proto) !== null) return `${kindOf(v)}${where}`;
    for (const k of Object.keys(v)) {
      const bad = notJson((v as Record<string, unknown>)[k], `${at}.${k}`, false, seen);
      if (bad !== null) return bad;
    }
    return null;
  } finally {
    seen.delete(v);
  }
}

/** `a Date`, `a Map`, `an instance of Reply` */
function kindOf(v: object): string {
  const name = (v.constructor as { name?: string } | undefined)?.name;
  if (name === 'Date' || name === 'Map' || name === 'Set' || name === 'RegExp' || name === 'Buffer' || name === 'Uint8Array') return `a ${name}`;
  return name ? `an instance of ${name}` : 'an object with a prototype';
}

/** A recorded result, as `step` returns it. */
export function decodeStep<T>(json: string): T {
  return (JSON.parse(json) as { v?: T }).v as T;
}

export class KeyedSteps {
  /** Steps that returned a recorded result without calling their fn; KeyedStats.stepsReplayed. */
  replayed = 0;

  constructor(private readonly c: StepsHost) {}

  /** The `n`-th durable call of the handler of `event` (key `key`) in this run: `ctx.step(name, fn)`, see the file header. */
  async run<T>(event: CloudEvent, key: string, n: number, name: string, fn: () => T | Promise<T>): Promise<T> {
    const { group, store } = this.c;
    const id = waitId(group, event, n);
    const type = STEP + name;
    const rec = await store.openWait(group, id, { type, key, deadline: Date.now() + MAX_WAIT_MS }, WAIT_RECORD_TTL_MS);
    if (rec.type !== type || rec.key !== key) throw outOfOrder(n, { type, key }, rec);
    if (rec.matched !== null) {
      this.replayed++;
      return decodeStep<T>(rec.matched);
    }
    // A throw leaves the record opened and empty (no result): removing it could remove the record a
    // newer owner's run of the same delivery opened meanwhile. It goes with the commit, or expires.
    const json = encodeStep(name, await fn(), this.c.maxStateBytes);
    const recorded = await store.matchWait(group, id, json);
    // Removed: the delivery was committed meanwhile (by the owner that took the group over: this run
    // is stale), or the key was erased (StateStore.remove) or the event's dead letter purged while fn ran.
    if (recorded === null) throw new OwnershipLostError(`ctx.step ${JSON.stringify(name)} of key ${JSON.stringify(key)}: its record is gone (the delivery was committed: by another owner, or by this handler returning without awaiting the step; or the key was erased by agentbus state rm, or the record expired); the result was not recorded`);
    // Another run recorded first (a previous owner's run still going): its result is the step's, on every run.
    return decodeStep<T>(recorded);
  }
}
