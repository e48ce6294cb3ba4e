// Publishing: publish() and publishBatch() check their input at the call and build each event's
// stored entry; every call made in the same turn of the event loop is stored in one append
// (Batcher), in round trips of about MAX_APPEND events, a call never split. On a store that allows
// it (DriverLog.appendsNow: SQLite, one Redis), a call made while no append waits or is in flight is appended
// at once, within the call, and the calls that follow it in that turn go together in the next one.
// On a store that keeps overlapping appends in order (DriverLog.overlapAppends: one Redis), a turn's
// calls do not wait for an append still in flight. With a spool (bus/spool.ts)
// every append goes through it, and a call's events are stored or spooled together.
import type { AppendEntry, AppendHas, Driver } from './driver.js';
import { entryHas } from './delivery.js';
import type { BusSpool, PublishResult } from './spool.js';
import { checkType, createEvent, encodeEvent, PUBLISH_OPTION_KEYS, type EventInput, type PublishOptions } from './event.js';
import { BusClosedError, invalid } from './errors.js';
import { knownKeys } from './validate.js';
import { DEDUP_WINDOW_MS, type ResolvedBusOptions } from './options.js';
import { Batcher } from './batcher.js';
import { overlapping } from './overlap.js';
import { dueTime } from './due.js';

/** Most entries one store round trip carries; a larger burst is split so no single write stalls for long. */
const MAX_APPEND = 5000;

const BATCH_ENTRY_KEYS = ['type', 'data', ...PUBLISH_OPTION_KEYS];

/** One publish or publishBatch call waiting for the next append; one promise per call, not per event. */
interface Call {
  entries: AppendEntry[];
  /** What the entries hold besides undelayed events (AppendHas), known as they were built. */
  has: AppendHas;
  /** publish() resolves with the id, publishBatch() with all ids. */
  one: boolean;
  /** publishDetailed(): resolve with PublishResult(s) (id and whether spooled) instead of ids. */
  detailed: boolean;
  resolve: (result: string | string[] | PublishResult | PublishResult[]) => void;
  reject: (err: unknown) => void;
}

/** The publishing half of a bus; `stored` hears of each call's entries once they are stored. */
export class Publisher {
  private readonly calls: Batcher<Call>;
  /** Publishing closes after the subscriptions drained: a handler finishing its work may still publish. */
  private sealed = false;

  constructor(
    private readonly driver: Driver,
    private readonly o: ResolvedBusOptions,
    stored: (entries: AppendEntry[], has: AppendHas) => void,
    /** Where appends go when the bus has a spool; null: straight to the driver. */
    spool: BusSpool | null = null,
  ) {
    // Straight to the driver, an append resolves with nothing: not spooled (no .then per append to say so).
    const append: Append = spool ? (entries, has) => spool.append(entries, has) : (entries, has) => driver.log.append(entries, has);
    // A lone publish goes at once where the store allows it (never through a spool).
    const atOnce = spool === null && driver.log.appendsNow !== undefined ? () => driver.log.appendsNow!() : undefined;
    const send = (calls: Call[]) => appendCalls(append, calls, stored);
    // Where the store keeps overlapping appends in order (one Redis), a publish does not wait for the reply to the one before.
    const ov = spool === null && driver.log.overlapAppends === true ? overlapping(send, MAX_APPEND) : { send, overlap: undefined };
    this.calls = new Batcher(ov.send, { atOnce, overlap: ov.overlap });
  }

  publish(type: string, data: unknown, opts: PublishOptions | undefined, detailed = false): Promise<string> {
    if (this.sealed) return Promise.reject(new BusClosedError(`publish ${type}`));
    try {
      // Only a publish with options pays for checking them.
      if (opts === undefined) return this.enqueue([this.entry(type, data, opts)], 0, true, detailed) as Promise<string>;
      checkPublishOptions(opts);
      const entry = this.entry(type, data, opts);
      return this.enqueue([entry], entryHas(entry), true, detailed) as Promise<string>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** As publish, resolving with the id and whether the event was spooled. */
  publishDetailed(type: string, data: unknown, opts: PublishOptions | undefined): Promise<PublishResult> {
    return this.publish(type, data, opts, true) as unknown as Promise<PublishResult>;
  }

  /** As publishBatch, resolving with each id and whether the events were spooled (all or none are). */
  publishBatchDetailed(events: EventInput[]): Promise<PublishResult[]> {
    return this.publishBatch(events, true) as unknown as Promise<PublishResult[]>;
  }

  publishBatch(events: EventInput[], detailed = false): Promise<string[]> {
    if (this.sealed) return Promise.reject(new BusClosedError('publishBatch'));
    if (!Array.isArray(events)) return Promise.reject(invalid('INVALID_OPTION', `publishBatch expects an array, got ${typeof events}`));
    let entries: AppendEntry[];
    let has: AppendHas = 0;
    try {
      // Validate all before storing any: a bad entry stores nothing.
      entries = events.map((e, i) => {
        if (e === null || typeof e !== 'object') throw invalid('INVALID_OPTION', `publishBatch entry ${i} is not an object`);
        const entry = this.entry(e.type, e.data, batchOptions(e, i));
        has |= entryHas(entry);
        return entry;
      });
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(entries, has, false, detailed) as Promise<string[]>;
  }

  /** Refuses publishes from now on; resolves once those already made are stored (or refused by the store). */
  seal(): Promise<void> {
    this.sealed = true;
    return this.calls.flush();
  }

  private enqueue(entries: AppendEntry[], has: AppendHas, one: boolean, detailed: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => this.calls.add({ entries, has, one, detailed, resolve, reject }));
  }

  /** One event to store; `opts` were checked for unknown keys by the caller. */
  private entry(type: string, data: unknown, opts: PublishOptions | undefined): AppendEntry {
    checkType(type);
    const { driver, o } = this;
    const event = createEvent(type, data, opts, o.source);
    const body = driver.log.encode ? driver.log.encode(event, o.maxPayloadBytes) : encodeEvent(event, o.maxPayloadBytes);
    const window = opts?.dedupWindowMs === undefined ? o.dedupWindowMs : DEDUP_WINDOW_MS.resolve('dedupWindowMs', opts.dedupWindowMs);
    // A window of 0 keeps no marker: the id is the caller's, and a repeat is stored again.
    const entry: AppendEntry = { topic: type, event, body, dedup: opts?.id !== undefined && window > 0, dedupWindowMs: window };
    if (opts !== undefined && (opts.delay !== undefined || opts.at !== undefined)) {
      const now = Date.now();
      const due = dueTime(opts.delay, opts.at, now);
      if (opts.name !== undefined) entry.dueName = checkDueName(opts.name);
      // A named event always goes through the due entries, so it replaces the pending one (fires at once when past).
      if (due !== undefined || entry.dueName !== undefined) {
        if (!driver.due) throw invalid('INVALID_OPTION', `publish ${type}: this store does not support delay or at`);
        entry.dueAt = due ?? now;
      }
    } else if (opts?.name !== undefined) {
      throw invalid('INVALID_OPTION', `publish ${type}: name ${JSON.stringify(opts.name)} needs delay or at (only delayed events are named)`);
    }
    return entry;
  }
}

/**
 * A batch entry's publish options (its keys besides type and data, checked for unknown ones), or
 * undefined when it has none: the common entry makes no options object and takes createEvent's
 * path for no options.
 */
function batchOptions(e: EventInput, i: number): PublishOptions | undefined {
  let other = false;
  for (const k of Object.keys(e)) if (k !== 'type' && k !== 'data') other = true;
  if (!other) return undefined;
  knownKeys(`publishBatch entry ${i}`, e, BATCH_ENTRY_KEYS);
  const { type: _type, data: _data, ...opts } = e;
  return opts;
}

/** Longest name of a delayed event (PublishOptions.name). */
export const MAX_DUE_NAME_LENGTH = 1024;

/** A delayed event's name: a non-empty string of at most MAX_DUE_NAME_LENGTH characters. */
export function checkDueName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_DUE_NAME_LENGTH) {
    throw invalid('INVALID_OPTION', `invalid name ${JSON.stringify(name)?.slice(0, 80)}: expected a string of 1 to ${MAX_DUE_NAME_LENGTH} characters`);
  }
  return name;
}

/** Publish options must be an object of known keys (a misspelt `subjet` is refused, not dropped). */
export function checkPublishOptions(opts: unknown): void {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw invalid('INVALID_OPTION', `publish options must be an object, got ${String(opts)}`);
  knownKeys('publish', opts, PUBLISH_OPTION_KEYS);
}

/** Stores entries: through a spool, true when they were spooled; straight to the driver, nothing. */
type Append = (entries: AppendEntry[], has: AppendHas) => Promise<boolean | void>;

/** Appends calls in order, about MAX_APPEND events a round trip (a call is never split); settles each call. */
async function appendCalls(append: Append, calls: Call[], stored: (entries: AppendEntry[], has: AppendHas) => void): Promise<void> {
  for (let start = 0; start < calls.length; ) {
    let end = start;
    let n = 0;
    let has: AppendHas = 0;
    while (end < calls.length && (end === start || n + calls[end].entries.length <= MAX_APPEND)) {
      has |= calls[end].has;
      n += calls[end++].entries.length;
    }
    const batch = end - start === calls.length ? calls : calls.slice(start, end);
    start = end;
    try {
      const spooled = (await append(batch.length === 1 ? batch[0].entries : batch.flatMap((c) => c.entries), has)) === true;
      // Spooled events are not in the store yet: the spool tells `stored` once it forwarded them.
      if (!spooled) for (const c of batch) stored(c.entries, c.has);
      for (const c of batch) c.resolve(result(c, spooled));
    } catch (err) {
      for (const c of batch) c.reject(err);
    }
  }
}

/** What a call resolves with: its id(s), or with publishDetailed, each id and whether it was spooled. */
function result(c: Call, spooled: boolean): string | string[] | PublishResult | PublishResult[] {
  if (!c.detailed) return c.one ? c.entries[0].event.id : c.entries.map((e) => e.event.id);
  return c.one ? { id: c.entries[0].event.id, spooled } : c.entries.map((e) => ({ id: e.event.id, spooled }));
}
