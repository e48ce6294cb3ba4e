/**
 * Delayed publishes: the `delay` / `at` publish options, checked, and the mover a bus runs once it
 * needs one (it subscribed, or published a delayed event), which hands due entries to the driver's
 * atomic move (Driver.due) so each becomes an event of its topic once, never before its due time,
 * whichever bus moves it.
 */
import type { Logger } from 'pino';
import type { DriverDue, DueEntry } from './driver.js';
import type { DueMoved } from './contract-observer.js';
import { invalid } from './errors.js';
import { errForLog } from './thrown.js';

/** The longest delay (and the furthest `at` from now): 365 days. */
export const MAX_DELAY_MS = 365 * 24 * 3600 * 1000;
/**
 * Longest sleep of a mover while the store holds due entries: one due sooner that another process
 * stored is found at most this late. A publish through this bus wakes its own mover at the due time.
 */
export const MOVER_POLL_MS = 100;
/**
 * Longest sleep of a mover whose last moves found no due entry at all in the store: its sleep
 * doubles from MOVER_POLL_MS up to this, and is back to MOVER_POLL_MS once one is found or this bus
 * publishes one. So an idle bus asks the store about once a second, and an entry another process
 * stores with a delay under this may be moved up to this long after its publish.
 */
export const MOVER_IDLE_POLL_MS = 1000;
/** Entries one move takes; a full batch is followed by another move at once. */
export const MOVE_BATCH = 500;
/** After a failed move (store unreachable), the next try; errors are logged at most once a minute. */
const RETRY_MS = 1000;
const LOG_EVERY_MS = 60_000;

/**
 * When a publish with `delay` (ms from now) or `at` (a Date, epoch ms or an ISO-8601 time) is due,
 * in epoch ms; undefined when neither is given, or when the due time is not after `now` (an `at`
 * in the past, `delay: 0`: an ordinary publish). Refuses both at once, a negative or non-finite
 * delay, an unreadable time, and anything more than MAX_DELAY_MS ahead.
 */
export function dueTime(delay: unknown, at: unknown, now: number): number | undefined {
  if (delay === undefined && at === undefined) return undefined;
  if (delay !== undefined && at !== undefined) throw invalid('INVALID_OPTION', 'publish takes delay or at, not both');
  let due: number;
  if (delay !== undefined) {
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0 || delay > MAX_DELAY_MS) {
      throw invalid('INVALID_OPTION', `invalid delay ${JSON.stringify(delay)}: expected milliseconds, a number from 0 to ${MAX_DELAY_MS} (365 days)`);
    }
    due = now + Math.ceil(delay);
  } else {
    due = at instanceof Date ? at.getTime() : typeof at === 'number' ? at : typeof at === 'string' ? Date.parse(at) : NaN;
    if (!Number.isFinite(due) || (typeof at === 'number' && !Number.isInteger(at))) {
      throw invalid('INVALID_OPTION', `invalid at ${at instanceof Date ? 'Invalid Date' : JSON.stringify(at)}: expected a Date, epoch milliseconds (an integer) or an ISO-8601 time`);
    }
    if (due > now + MAX_DELAY_MS) {
      throw invalid('INVALID_OPTION', `invalid at ${new Date(due).toISOString()}: at most ${MAX_DELAY_MS} ms (365 days) from now`);
    }
  }
  return due > now ? due : undefined;
}

/**
 * Moves due entries into their topics: sleeps until the earliest due time it knows of, at most
 * MOVER_POLL_MS (MOVER_IDLE_POLL_MS, backing off, while the store holds none), and is woken earlier
 * by a publish of this bus due sooner. It costs nothing until started: the bus starts it when it
 * subscribes (its consumers must see entries other processes delayed) or stores a delayed event of
 * its own; a bus that only publishes undelayed events, reads or inspects never asks the store about
 * due entries. The driver's move is atomic per entry, so several movers never move one twice, and a
 * mover killed mid-move leaves each entry either moved or due.
 */
export class DueMover {
  private timer: NodeJS.Timeout | null = null;
  /** When the timer fires (epoch ms); Infinity while a move runs, before start and when stopped. */
  private wakeAt = Infinity;
  private running: Promise<void> | null = null;
  private started = false;
  private stopped = false;
  private lastLogged = 0;
  /** The sleep after a move that found nothing due in the store (doubles up to MOVER_IDLE_POLL_MS). */
  private idleMs = MOVER_POLL_MS;

  constructor(
    private readonly due: DriverDue,
    private readonly log: Logger,
    /** Told what each move took (Bus.observe's dueMoved); not called for a move that took nothing. */
    private readonly onMoved: (moved: DueMoved[]) => void = () => {},
  ) {}

  /** Starts moving (a first move at once); later calls do nothing. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
  }

  /** An entry due at `at` was stored by this bus: starts the mover, and moves the entry then if it would sleep past it. */
  stored(at: number): void {
    if (this.stopped) return;
    this.started = true;
    this.idleMs = MOVER_POLL_MS;
    // A move running now may have read the store before this entry was in it: decide after it.
    if (this.running) void this.running.then(() => this.stored(at));
    else if (at < this.wakeAt) this.schedule(at - Date.now());
  }

  /** Stops moving; resolves once a move in flight ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** The next move in `inMs`, at most `cap` ms from now. */
  private schedule(inMs: number, cap = MOVER_POLL_MS): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const ms = Math.max(0, Math.min(inMs, cap));
    this.wakeAt = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wakeAt = Infinity;
      this.running = this.move().finally(() => (this.running = null));
    }, ms);
    this.timer.unref();
  }

  private async move(): Promise<void> {
    let next: number | null = null;
    let failed = false;
    try {
      for (;;) {
        const r = await this.due.move(Date.now(), MOVE_BATCH);
        next = r.next;
        if (r.entries.length > 0) this.onMoved(byTopic(r.entries, Date.now()));
        if (r.failed?.length) {
          failed = true;
          this.logError(r.failed[0], r.failed.length);
        }
        if (this.stopped || r.moved < MOVE_BATCH) break;
      }
    } catch (err) {
      this.logError(err, 1);
      this.schedule(RETRY_MS, RETRY_MS);
      return;
    }
    // A part that failed is tried again at the next move, within MOVER_POLL_MS, like any other.
    if (next !== null || failed) {
      this.idleMs = MOVER_POLL_MS;
      this.schedule(next === null ? MOVER_POLL_MS : next - Date.now());
    } else {
      // Nothing due anywhere: sleep longer each time, up to MOVER_IDLE_POLL_MS.
      this.schedule(this.idleMs, this.idleMs);
      this.idleMs = Math.min(this.idleMs * 2, MOVER_IDLE_POLL_MS);
    }
  }

  private logError(err: unknown, parts: number): void {
    if (Date.now() - this.lastLogged < LOG_EVERY_MS) return;
    this.lastLogged = Date.now();
    this.log.error({ err: errForLog(err), parts }, 'store error while moving due delayed events (tried again at the next move; logged at most once a minute)');
  }
}

/** Moved entries per topic, each with its lateness at `now` (the move's end). */
function byTopic(entries: DueEntry[], now: number): DueMoved[] {
  const out = new Map<string, DueMoved>();
  for (const e of entries) {
    let m = out.get(e.topic);
    if (m === undefined) out.set(e.topic, (m = { type: e.topic, count: 0, lateMs: [] }));
    m.count++;
    m.lateMs.push(Math.max(0, now - e.dueAt));
  }
  return [...out.values()];
}
