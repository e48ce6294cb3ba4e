/**
 * Durable time for agents, built on delayed publishes (bus/due.ts):
 * - `static schedules = [{ every, type, data? }]`: an event of `type` at every multiple of `every`
 *   since the epoch. Each tick is one delayed event with an id derived from (agent, type, tick), and
 *   every host running the agent publishes the next tick ahead of time under that id, so the store
 *   keeps one per tick whatever the number of hosts (the dedup window covers the interval). A tick
 *   whose event is stored fires even if every host was down at the time (once, when a bus is back);
 *   ticks for which no host was running to store them ahead are skipped: after downtime a schedule
 *   fires once, then on its beat.
 * - `ctx.schedule(type, data, { in | at })`: a reminder, a delayed event (for a keyed agent: with the
 *   key as subject, and an id derived from the delivery, so a redelivered handler stores it once).
 *   Replacing or cancelling a reminder by name is not built yet: a keyed agent keeps in its state
 *   which reminder is current and ignores the others.
 */
import type { Bus } from '../bus/contract.js';
import { invalid } from '../bus/errors.js';
import { checkType, stableId } from '../bus/event.js';
import { parseDuration, toMs } from '../bus/duration.js';

/** `every` as a schedule takes it: milliseconds, or a number with a unit (`250ms`, `30s`, `5m`, `2h`, `1d`). */
export type Every = number | string;

export interface Schedule {
  every: Every;
  type: string;
  data?: unknown;
}

export interface ReminderOptions {
  /** Fire this long from now: milliseconds or a duration (`30s`, `10m`). */
  in?: Every | undefined;
  /** Fire at this time: a Date, epoch ms or an ISO-8601 time. */
  at?: Date | number | string | undefined;
}

const MIN_EVERY_MS = 1000;
const MAX_EVERY_MS = 365 * 86_400_000;

export { parseDuration, toMs };

/** An agent's `static schedules`, checked at host construction. */
export function checkSchedules(where: string, v: unknown): Array<{ everyMs: number; type: string; data: unknown }> {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalid('INVALID_OPTION', `${where}: static schedules must be an array of { every, type, data? }`);
  return v.map((s: Schedule, i) => {
    if (s === null || typeof s !== 'object') throw invalid('INVALID_OPTION', `${where}: schedule ${i} must be an object { every, type, data? }`);
    checkType(s.type);
    const everyMs = toMs(`${where} schedule ${i} every`, s.every);
    if (everyMs < MIN_EVERY_MS || everyMs > MAX_EVERY_MS) throw invalid('INVALID_OPTION', `${where}: schedule ${i} every ${everyMs} ms is outside ${MIN_EVERY_MS} ms to 365 days`);
    return { everyMs, type: s.type, data: s.data ?? null };
  });
}

/** The source schedule and reminder events are published with: the agent's, the same on every host (dedup across hosts). */
export const scheduleSource = (agent: string) => `/agentbus/schedules/${agent}`;

/**
 * Keeps one schedule going for an agent instance: stores the next tick now and, at each tick, the
 * one after. Returns a stop function. Errors (store unreachable) are retried at the next tick.
 */
export function runSchedule(bus: Bus, agent: string, s: { everyMs: number; type: string; data: unknown }, onError: (err: unknown) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const publishTick = (tick: number) =>
    bus
      .publish(s.type, s.data, { id: stableId(agent, s.type, s.everyMs, tick), source: scheduleSource(agent), at: tick, dedupWindowMs: Math.min(MAX_EVERY_MS, 2 * s.everyMs + 60_000) })
      .then(() => undefined, onError);
  const step = () => {
    if (stopped) return;
    const now = Date.now();
    const next = Math.floor(now / s.everyMs) * s.everyMs + s.everyMs;
    void publishTick(next);
    timer = setTimeout(step, next - now + 1);
    timer.unref();
  };
  step();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * The publish options of a reminder (see ReminderOptions): its due time and, for a keyed agent, the
 * key as subject. Its id is the handler's next publish id: derived from the delivery for a keyed
 * agent (runtime/keyed.ts), so a redelivered handler's reminder is stored once.
 */
export function reminderOptions(key: string | undefined, o: ReminderOptions): { at: number; subject?: string } {
  if (o === null || typeof o !== 'object') throw invalid('INVALID_OPTION', 'schedule options must be { in } or { at }');
  if ((o.in === undefined) === (o.at === undefined)) throw invalid('INVALID_OPTION', 'schedule takes one of in or at');
  const at = o.in !== undefined ? Date.now() + toMs('schedule in', o.in) : o.at instanceof Date ? o.at.getTime() : typeof o.at === 'number' ? o.at : Date.parse(String(o.at));
  if (!Number.isFinite(at)) throw invalid('INVALID_OPTION', `invalid schedule at ${JSON.stringify(o.at)}: expected a Date, epoch ms or an ISO-8601 time`);
  return { at, ...(key !== undefined ? { subject: key } : {}) };
}
