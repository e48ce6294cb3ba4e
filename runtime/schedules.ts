/**
 * Durable time for agents, built on delayed publishes (bus/due.ts):
 * - `static schedules = [{ every, type, data? } | { cron, tz?, type, data? }]`: an event of `type`
 *   at every multiple of `every` since the epoch, or at each time the cron expression names
 *   (runtime/cron.ts). Each tick is one delayed event with an id derived from (agent, type, the
 *   beat, tick), and every host running the agent publishes the next tick ahead of time under that
 *   id, so the store keeps one per tick whatever the number of hosts (the dedup window covers the
 *   wait). A tick whose event is stored fires even if every host was down at the time (once, when a
 *   bus is back); ticks for which no host was running to store them ahead are skipped: after
 *   downtime a schedule fires once, then on its beat.
 * - `ctx.schedule(type, data, { in | at, name? })`: a reminder, a delayed event (for a keyed agent:
 *   with the key as subject, and an id derived from the delivery, so a redelivered handler stores it
 *   once). With a name it is a named delayed event (PublishOptions.name) under reminderName(agent,
 *   key, name): scheduling the name again replaces the pending one, `ctx.cancelSchedule(name)`
 *   removes it; a keyed agent's cancel carries an id derived from the delivery too (done once).
 */
import type { Bus } from '../bus/contract.js';
import { invalid } from '../bus/errors.js';
import { checkType, stableId } from '../bus/event.js';
import { MAX_DELAY_MS } from '../bus/due.js';
import { nextTick, parseCron } from './cron.js';
import { parseDuration, toMs } from '../bus/duration.js';

/** `every` as a schedule takes it: milliseconds, or a number with a unit (`250ms`, `30s`, `5m`, `2h`, `1d`). */
export type Every = number | string;

/** One of `static schedules`: `every` or `cron` (with `tz`, an IANA zone, default UTC). */
export type Schedule = { every: Every; type: string; data?: unknown } | { cron: string; tz?: string; type: string; data?: unknown };

/** A schedule as checked: the first tick after a time, and what goes in each tick's id. */
export interface CheckedSchedule {
  type: string;
  data: unknown;
  /** The first tick strictly after `now` (epoch ms); null: none within about five years. */
  next(now: number): number | null;
  /** What identifies the beat in a tick's id (the `every` ms; `cron <expr> <tz>`). */
  beat: number | string;
}

export interface ReminderOptions {
  /** Fire this long from now: milliseconds or a duration (`30s`, `10m`). */
  in?: Every | undefined;
  /** Fire at this time: a Date, epoch ms or an ISO-8601 time. */
  at?: Date | number | string | undefined;
  /**
   * Names the reminder (1-200 characters), per agent and, for a keyed agent, per key: scheduling
   * the name again replaces the pending one; `ctx.cancelSchedule(name)` removes it.
   */
  name?: string | undefined;
}

/** Longest reminder name. */
export const MAX_REMINDER_NAME = 200;

/**
 * The store's name (PublishOptions.name) of an agent's reminder: `["<agent>","<name>"]`, or with the
 * key for a keyed agent `["<agent>","<name>","<key>"]` (JSON, so no two triples share one). What
 * `agentbus schedules ls` shows and `schedules rm --name N --agent A [--key K]` builds.
 */
export function reminderName(agent: string, key: string | undefined, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_REMINDER_NAME) {
    throw invalid('INVALID_OPTION', `invalid reminder name ${JSON.stringify(name)?.slice(0, 80)}: expected a string of 1 to ${MAX_REMINDER_NAME} characters`);
  }
  return JSON.stringify(key === undefined ? [agent, name] : [agent, name, key]);
}

const MIN_EVERY_MS = 1000;
const MAX_EVERY_MS = 365 * 86_400_000;

export { parseDuration, toMs };

/** An agent's `static schedules`, checked at host construction. */
export function checkSchedules(where: string, v: unknown): CheckedSchedule[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalid('INVALID_OPTION', `${where}: static schedules must be an array of { every | cron, type, data? }`);
  return v.map((s: Record<string, unknown>, i) => {
    if (s === null || typeof s !== 'object') throw invalid('INVALID_OPTION', `${where}: schedule ${i} must be an object { every | cron, type, data? }`);
    checkType(s.type);
    const type = s.type as string;
    const data = s.data ?? null;
    if ((s.every === undefined) === (s.cron === undefined)) throw invalid('INVALID_OPTION', `${where}: schedule ${i} takes one of every or cron`);
    if (s.cron !== undefined) {
      const cron = parseCron(s.cron, s.tz, `${where} schedule ${i}`);
      if (nextTick(cron, Date.now()) === null) throw invalid('INVALID_OPTION', `${where}: schedule ${i} cron ${JSON.stringify(s.cron)} never fires (no time matches within five years)`);
      return { type, data, next: (now: number) => nextTick(cron, now), beat: `cron ${cron.source} ${cron.tz}` };
    }
    if (s.tz !== undefined) throw invalid('INVALID_OPTION', `${where}: schedule ${i} tz goes with cron, not every`);
    const everyMs = toMs(`${where} schedule ${i} every`, s.every);
    if (everyMs < MIN_EVERY_MS || everyMs > MAX_EVERY_MS) throw invalid('INVALID_OPTION', `${where}: schedule ${i} every ${everyMs} ms is outside ${MIN_EVERY_MS} ms to 365 days`);
    return { type, data, next: (now: number) => Math.floor(now / everyMs) * everyMs + everyMs, beat: everyMs };
  });
}

/** The source schedule and reminder events are published with: the agent's, the same on every host (dedup across hosts). */
export const scheduleSource = (agent: string) => `/agentbus/schedules/${agent}`;

/** Node's timers hold at most this many ms (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Keeps one schedule going for an agent instance: stores the next tick now and, at each tick, the
 * one after. Returns a stop function. Errors (store unreachable) are retried at the next tick. A
 * tick more than 365 days ahead (the longest delay) is stored once it is within that.
 */
export function runSchedule(bus: Bus, agent: string, s: CheckedSchedule, onError: (err: unknown) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const publishTick = (tick: number, now: number) =>
    bus
      // The marker outlives every host's publish of this tick (each is before the tick, clocks within a minute).
      .publish(s.type, s.data, { id: stableId(agent, s.type, s.beat, tick), source: scheduleSource(agent), at: tick, dedupWindowMs: Math.min(MAX_EVERY_MS, 2 * (tick - now) + 60_000) })
      .then(() => undefined, onError);
  const step = () => {
    if (stopped) return;
    const now = Date.now();
    const next = s.next(now);
    if (next === null) return;
    if (next - now <= MAX_DELAY_MS) void publishTick(next, now);
    timer = setTimeout(step, Math.min(next - now + 1, MAX_TIMER_MS));
    timer.unref();
  };
  step();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * The publish options of a reminder (see ReminderOptions): its due time, for a keyed agent the key
 * as subject, and with a name its store name (reminderName). Its id is the handler's next publish
 * id: derived from the delivery for a keyed agent (runtime/keyed.ts), so a redelivered handler's
 * reminder is stored once.
 */
export function reminderOptions(agent: string, key: string | undefined, o: ReminderOptions): { at: number; subject?: string; name?: string } {
  if (o === null || typeof o !== 'object') throw invalid('INVALID_OPTION', 'schedule options must be { in } or { at }, with an optional name');
  if ((o.in === undefined) === (o.at === undefined)) throw invalid('INVALID_OPTION', 'schedule takes one of in or at');
  const at = o.in !== undefined ? Date.now() + toMs('schedule in', o.in) : o.at instanceof Date ? o.at.getTime() : typeof o.at === 'number' ? o.at : Date.parse(String(o.at));
  if (!Number.isFinite(at)) throw invalid('INVALID_OPTION', `invalid schedule at ${JSON.stringify(o.at)}: expected a Date, epoch ms or an ISO-8601 time`);
  return { at, ...(key !== undefined ? { subject: key } : {}), ...(o.name !== undefined ? { name: reminderName(agent, key, o.name) } : {}) };
}
