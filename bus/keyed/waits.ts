/**
 * Durable waits of keyed handlers (`ctx.waitFor`, README "Waiting durably"): a handler of a key
 * parks until an event of an awaited type and the same key arrives, or its deadline passes. The
 * key stays busy meanwhile (its other events queue behind the handler, as behind any await); the
 * awaited event bypasses the key's lane, since the key is busy with the very handler waiting for it.
 *
 * Durability: the delivery E whose handler waits is not acknowledged until the handler returns, so
 * a crash redelivers E and its handler runs again from its start. Each wait is recorded in the
 * store (StateStore.openWait) under an id derived from (group, E, ordinal of the call among the
 * handler run's durable calls: its waitFor and ctx.step calls, steps.ts) with its deadline, fixed
 * at the first run. A matching event is recorded into the wait's record (matchWait) before it is
 * acknowledged, so the re-run finds it there at the same ordinal and returns it at once; a passed
 * deadline throws WaitTimeoutError; otherwise the re-run waits for the rest of the time. Records are removed once E is committed (owner.ts),
 * when E's dead letter is purged or retried fresh (removeRecordsOf), or when their key is erased
 * (StateStore.remove); otherwise they expire WAIT_RECORD_TTL_MS after their deadline (E
 * dead-lettered, or the group abandoned).
 */
import type { Held } from '../held.js';
import type { CloudEvent } from '../event.js';
import { checkType, stableId } from '../event.js';
import { misuse, OwnershipLostError, WaitTimeoutError } from '../errors.js';
import { toMs } from '../duration.js';
import { REQUEST, STEP, type StateStore, type WaitRecord } from '../state.js';
import type { WaitOptions } from './contract.js';
import { describe } from '../thrown.js';

/** Longest `timeout` of a wait. */
export const MAX_WAIT_MS = 365 * 86_400_000;
/** A wait's record is kept this long past its deadline unless its delivery is committed first. */
export const WAIT_RECORD_TTL_MS = 86_400_000;
export { STEP };
/** setTimeout's longest delay; longer waits re-arm. */
export const MAX_TIMER_MS = 2_147_483_647;

/** What the waits need of their consumer. */
export interface WaitsHost {
  readonly group: string;
  readonly store: StateStore;
  /** True when the subscription reads `type` (in its types or its waitsFor). */
  declared(type: string): boolean;
  /** Deliveries queued behind the running one of `key`'s lane, in lane order. */
  queued(key: string): Held[];
  /** Takes a queued delivery out of its lane (a wait takes it). */
  unqueue(key: string, h: Held): void;
  /** A delivery a wait took and recorded: acknowledged (with the next commit), forgotten. */
  consumed(h: Held): void;
  /** A delivery a wait took but could not record: forgotten unacknowledged (its lease runs out, it comes again). */
  dropped(h: Held): void;
  storeError(what: string, err: unknown): void;
}

interface Waiter {
  id: string;
  key: string;
  type: string;
  deadline: number;
  match: ((event: CloudEvent) => boolean) | undefined;
  resolve(e: CloudEvent): void;
  reject(err: unknown): void;
  /** Ends the wait's timer and signal listener. */
  end(): void;
}

export class KeyedWaits {
  /** Waits parked in memory, per key. */
  private readonly byKey = new Map<string, Waiter[]>();
  /** Waits that returned a matching event (taken now, or recorded by an earlier run); KeyedStats.waitsResumed. */
  resumed = 0;
  /** Waits that threw WaitTimeoutError; KeyedStats.waitsTimedOut. */
  timedOut = 0;

  constructor(private readonly c: WaitsHost) {}

  /** Waits parked now (all keys). */
  get size(): number {
    let n = 0;
    for (const ws of this.byKey.values()) n += ws.length;
    return n;
  }

  /**
   * The `n`-th `ctx.waitFor` of the handler of `h` (key `key`) in this run: see the file header.
   * `signal` is the handler's: its abort ends the wait with its reason.
   */
  async wait(h: Held, key: string, n: number, type: string, options: WaitOptions, signal: AbortSignal): Promise<CloudEvent> {
    try {
      const e = await this.park(h, key, n, type, options, signal);
      this.resumed++;
      return e;
    } catch (err) {
      if (err instanceof WaitTimeoutError) this.timedOut++;
      throw err;
    }
  }

  private async park(h: Held, key: string, n: number, type: string, options: WaitOptions, signal: AbortSignal): Promise<CloudEvent> {
    const { group } = this.c;
    checkType(type);
    if (!this.c.declared(type)) {
      throw misuse(`waitFor ${JSON.stringify(type)} in group ${group}: the subscription does not read that type; declare it in waitsFor (agents: static waitsFor) or in its types`);
    }
    if (options === null || typeof options !== 'object') throw misuse(`waitFor ${type}: options { timeout, match? } are required, got ${String(options)}`);
    const { timeout, match } = options;
    if (timeout === undefined) throw misuse(`waitFor ${type}: timeout is required (ms or a duration such as 10m, 1d; at most 365d)`);
    const ms = toMs(`waitFor ${type} timeout`, timeout);
    if (ms < 1 || ms > MAX_WAIT_MS) throw misuse(`invalid waitFor ${type} timeout ${ms} ms: expected 1 ms to 365 days`);
    if (match !== undefined && typeof match !== 'function') throw misuse(`invalid waitFor ${type} match ${describe(match)}: expected a function (event) => boolean`);
    const id = waitId(group, h.d.event!, n);
    const rec: WaitRecord = await this.c.store.openWait(group, id, { type, key, deadline: Date.now() + ms }, WAIT_RECORD_TTL_MS);
    if (rec.type !== type || rec.key !== key) throw outOfOrder(n, { type, key }, rec);
    if (rec.matched !== null) return JSON.parse(rec.matched) as CloudEvent;
    if (signal.aborted) throw signal.reason;
    if (Date.now() >= rec.deadline) throw timedOut(type, key, rec.deadline);
    const m = match as Waiter['match'];
    // An event that arrived before this call queues behind the handler in the key's lane: take it from there.
    for (const q of this.c.queued(key)) {
      if (q.d.event !== null && q.d.topic === type && accepts(m, q.d.event)) {
        this.c.unqueue(key, q);
        return this.take(id, q);
      }
    }
    return new Promise<CloudEvent>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        const left = rec.deadline - Date.now();
        if (left <= 0) return expire();
        timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      };
      const expire = () => {
        this.remove(w);
        reject(timedOut(type, key, rec.deadline));
      };
      const aborted = () => {
        this.remove(w);
        reject(signal.reason);
      };
      const w: Waiter = {
        id,
        key,
        type,
        deadline: rec.deadline,
        match: m,
        resolve,
        reject,
        end: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', aborted);
        },
      };
      const list = this.byKey.get(key);
      if (list) list.push(w);
      else this.byKey.set(key, [w]);
      signal.addEventListener('abort', aborted, { once: true });
      arm();
    });
  }

  /**
   * A delivery just arrived, keyed `key`: when a wait of that key parks for its type and its
   * `match` accepts it, the wait takes it (recorded, then acknowledged) and true is returned; the
   * delivery then never enters its lane nor runs a handler.
   */
  offer(h: Held, key: string): boolean {
    const list = this.byKey.get(key);
    if (list === undefined || h.d.event === null) return false;
    const w = list.find((x) => x.type === h.d.topic && accepts(x.match, h.d.event!));
    if (w === undefined) return false;
    this.remove(w);
    h.state = 'running';
    this.take(w.id, h).then(w.resolve, w.reject);
    return true;
  }

  /** Every parked wait ends with `err` (the keyed tenure ended: their deliveries go to the next owner). */
  abortAll(err: unknown): void {
    const all = [...this.byKey.values()].flat();
    this.byKey.clear();
    for (const w of all) {
      w.end();
      w.reject(err);
    }
  }

  private remove(w: Waiter): void {
    w.end();
    const list = this.byKey.get(w.key);
    if (list === undefined) return;
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byKey.delete(w.key);
  }

  /**
   * Records `m` as the match of wait `id`, then acknowledges it, and resolves the recorded match.
   * When another match was recorded first (a previous owner's run), that one is returned and `m` is
   * left unacknowledged (delivered again, as an ordinary event). A store error, or a record gone,
   * fails the wait (the handler's attempt fails and runs again; `m` comes again too).
   */
  private async take(id: string, m: Held): Promise<CloudEvent> {
    const json = JSON.stringify(m.d.event);
    let recorded: string | null;
    try {
      recorded = await this.c.store.matchWait(this.c.group, id, json);
    } catch (err) {
      this.c.dropped(m);
      throw err;
    }
    if (recorded === null) {
      // The record is gone (the key erased by state rm, or the delivery committed by another owner):
      // acknowledged, `m` would be lost to the run that waits again from the start; it comes again.
      this.c.dropped(m);
      throw new OwnershipLostError(`waitFor ${m.d.topic}: the wait's record is gone (its key erased by agentbus state rm, or its delivery committed by another owner); the handler runs again and waits anew, and the event comes again`);
    }
    if (recorded !== json) {
      this.c.dropped(m);
      return JSON.parse(recorded) as CloudEvent;
    }
    this.c.consumed(m);
    return m.d.event!;
  }
}

/** What a wait record was recorded for, in words: a wait's type, a step's name or a request's type, and the key. */
export function recordedFor(rec: Pick<WaitRecord, 'type' | 'key'>): string {
  const what = rec.type.startsWith(STEP)
    ? `ctx.step ${JSON.stringify(rec.type.slice(STEP.length))}`
    : rec.type.startsWith(REQUEST)
      ? `ctx.request ${rec.type.slice(REQUEST.length)}`
      : `waitFor ${rec.type}`;
  return `${what} of key ${JSON.stringify(rec.key)}`;
}

/**
 * The refusal of durable call `n` (0-based) of a handler run, `call` (its record's type and key),
 * whose record an earlier run made for another call `rec`: the calls came in another order.
 */
export function outOfOrder(n: number, call: Pick<WaitRecord, 'type' | 'key'>, rec: WaitRecord): Error {
  return misuse(
    `${recordedFor(call)} is durable call ${n + 1} of this handler run, which an earlier run recorded for ${recordedFor(rec)}: a handler must make its ctx.request, ctx.waitFor and ctx.step calls in the same order on every run`,
  );
}

/** The record id of the `n`-th wait of a handler of `event` in `group`: the same on every delivery of it, on any host. */
export function waitId(group: string, event: CloudEvent, n: number): string {
  return stableId(group, 'wait', event.source, event.id, n);
}

/** Record ids removeRecordsOf tries per call. */
const RECORDS_PER_CALL = 32;
/** removeRecordsOf stops after this many consecutive ordinals without a record. */
export const RECORD_GAP = 256;

/**
 * Removes the wait and step records of the handler runs of `event` in `group` (its dead letter is
 * purged, or retried fresh): ids waitId(group, event, 0, 1, ...), RECORDS_PER_CALL a call, until
 * RECORD_GAP consecutive ordinals have none. Records are mostly dense in n, not wholly: a waitFor
 * refused after taking its ordinal records nothing, and waits expire a day past their deadline
 * while a later step of the same run is kept a year. So a run whose 256 consecutive durable calls
 * left no record (a loop of waits that expired) hides what follows them. Resolves how many were removed.
 */
export async function removeRecordsOf(store: StateStore, group: string, event: CloudEvent): Promise<number> {
  let total = 0;
  let missing = 0;
  for (let n = 0; missing < RECORD_GAP; n += RECORDS_PER_CALL) {
    const ids = Array.from({ length: RECORDS_PER_CALL }, (_, i) => waitId(group, event, n + i));
    const removed = await store.removeWaits(group, ids);
    missing = removed === 0 ? missing + RECORDS_PER_CALL : 0;
    total += removed;
  }
  return total;
}

function accepts(match: ((event: CloudEvent) => boolean) | undefined, event: CloudEvent): boolean {
  if (match === undefined) return true;
  try {
    return match(event) === true;
  } catch {
    return false;
  }
}

function timedOut(type: string, key: string, deadline: number): WaitTimeoutError {
  return new WaitTimeoutError(`waitFor ${type} of key ${JSON.stringify(key)} timed out at its deadline ${new Date(deadline).toISOString()}`, deadline);
}
