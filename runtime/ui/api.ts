// The admin UI's JSON API (/ui/api/...): what the pages read and the actions they take. Reads go to
// the bus (stats, dead letters, keyed state, replay for the tail) and, when a host serves the UI,
// to host.status(); actions (retry, purge, rewind, cancel a delayed event) only when the UI was
// started with actions on.
import type { Bus, DeadLetter, ScheduledEvent } from '../../bus/contract.js';
import type { CloudEvent } from '../../bus/event.js';
import { invalid } from '../../bus/errors.js';
import { int } from '../../bus/validate.js';
import type { AgentReplayResult, HostStatus } from '../host.js';
import type { ReplayOptions } from '../../bus/contract.js';
import { retryOrPurge } from '../dead-letter-ops.js';
import { removeScheduled } from '../schedule-ops.js';
import type { LagHistory } from './lag.js';

/** Dead letters a search reads from the store before filtering (by subject, event id, reason, time). */
export const SEARCH_SCAN = 10_000;
/** Events a tail request returns at most, and how far back it looks. */
export const TAIL_MAX = 100;
export const TAIL_WINDOW_MS = 5 * 60_000;
/** Pending delayed events the Schedules page reads from the store (earliest due first) before ordering and paging. */
export const SCHEDULES_SCAN = 10_000;

/** What the UI needs of the host serving it; `replay` (AgentHost.replay) enables "replay to an agent". */
export interface UiHost {
  status(): HostStatus;
  replay?(agent: string, options: Partial<ReplayOptions> & { publish?: boolean }): Promise<AgentReplayResult>;
}

/** Failed events and captured publishes a replay answer lists at most (the counts are whole). */
export const REPLAY_LISTED = 20;

export interface ApiContext {
  bus: Bus;
  host: UiHost | undefined;
  actions: boolean;
  lag: LagHistory;
}

/** A refusal the client can show: status code and message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

type Query = URLSearchParams;

/** GET routes: path after /ui/api -> what it answers. */
export const reads: Record<string, (c: ApiContext, q: Query) => Promise<unknown>> = {
  '/overview': async (c) => {
    const stats = await c.bus.stats();
    const groups = stats.flatMap((t) => t.groups);
    return {
      served: c.host ? 'host' : 'store',
      actions: c.actions,
      host: c.host?.status() ?? null,
      topics: stats.length,
      events: stats.reduce((n, t) => n + t.length, 0),
      lag: groups.reduce((n, g) => n + g.lag, 0),
      pending: groups.reduce((n, g) => n + g.pending, 0),
      deadLetters: groups.reduce((n, g) => n + g.deadLetters, 0),
    };
  },
  '/topics': (c) => c.bus.stats(),
  '/lag': async (c) => {
    // A store that does not answer (an outage) leaves the chart as it was after a second.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([c.lag.sample(1000), new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
    return c.lag.list();
  },
  '/dead-letters': (c, q) => searchDeadLetters(c.bus, q),
  '/dead-letter': async (c, q) => {
    const dl = await c.bus.deadLetters.get(need(q, 'id'));
    if (dl === null) throw new ApiError(404, `no dead letter ${JSON.stringify(q.get('id'))} (retried, purged, or never there)`);
    return dl;
  },
  '/keys': async (c, q) => {
    const keys = c.bus.keys;
    if (!keys) throw new ApiError(404, 'this store keeps no keyed state');
    const group = q.get('group');
    if (!group) return { groups: await keys.groups() };
    const limit = int('limit', optionalNumber(q, 'limit'), 100, 1, 10_000);
    return { group, keys: await keys.list(group, { after: q.get('after') || undefined, limit }) };
  },
  '/waits': async (c, q) => {
    const keys = c.bus.keys;
    if (!keys) throw new ApiError(404, 'this store keeps no keyed state');
    const limit = int('limit', optionalNumber(q, 'limit'), 100, 1, 10_000);
    const group = need(q, 'group');
    return { group, waits: await keys.waits(group, { key: q.get('key') || undefined, limit }) };
  },
  '/key': async (c, q) => {
    const keys = c.bus.keys;
    if (!keys) throw new ApiError(404, 'this store keeps no keyed state');
    const [group, key] = [need(q, 'group'), need(q, 'key')];
    const [state, waits, steps] = await Promise.all([keys.get(group, key), keys.waits(group, { key }), keys.steps(group, { key })]);
    // A key whose first handler still runs or waits has no state yet, but its waits and steps are shown.
    if (!state && waits.length === 0 && steps.length === 0) throw new ApiError(404, `no state for key ${JSON.stringify(key)} in group ${JSON.stringify(group)}`);
    return { ...(state ?? { key, state: null }), waits, steps };
  },
  '/tail': (c, q) => tail(c.bus, q),
  '/schedules': (c, q) => listSchedules(c.bus, q),
};

/** POST routes; each refused (403) unless actions are on. Bodies are JSON objects. */
export const writes: Record<string, (c: ApiContext, body: Record<string, unknown>) => Promise<unknown>> = {
  // fresh: the events' durable step and wait records removed first (dlq retry --fresh); checked by deadLetters.retry.
  '/dead-letters/retry': (c, b) => retryOrPurge(c.bus, 'retry', b.ids, b.fresh === undefined ? {} : { fresh: b.fresh as boolean }),
  '/dead-letters/purge': (c, b) => retryOrPurge(c.bus, 'purge', b.ids),
  '/schedules/cancel': (c, b) => {
    if (!c.bus.schedules) throw new ApiError(404, 'this store keeps no delayed events');
    return removeScheduled(c.bus, b.ids);
  },
  '/rewind': async (c, b) => {
    const { group, type, from } = b;
    if (typeof group !== 'string' || group === '' || typeof type !== 'string' || type === '') {
      throw invalid('INVALID_OPTION', `rewind needs a group and a type, got group ${JSON.stringify(group)} and type ${JSON.stringify(type)}`);
    }
    const bound = from === undefined || from === '' ? 'earliest' : typeof from === 'string' && /^\d{12,}$/.test(from) ? Number(from) : from;
    if (typeof bound !== 'string' && typeof bound !== 'number') throw invalid('INVALID_OPTION', `invalid rewind from ${JSON.stringify(from)}: expected earliest, an ISO-8601 time, epoch ms or a position`);
    await c.bus.rewind({ group, type, from: bound });
    return { group, type, from: bound };
  },
  '/replay': (c, b) => replayToAgent(c, b),
};

/**
 * `agentbus replay --agent NAME --types TYPE [--from B] [--to B] [--publish]` from the topic page: a
 * fresh instance of the agent gets the topic's stored events in [from, to]; no group moves, nothing
 * is acknowledged; what it publishes is captured (stored only with `publish: true`). Only a host
 * serving the UI has agents; `agentbus ui` answers 404.
 */
async function replayToAgent(c: ApiContext, b: Record<string, unknown>): Promise<unknown> {
  const { agent, type, from, to, publish } = b;
  if (!c.host?.replay) throw new ApiError(404, 'replay to an agent needs the UI of the host running the agents (agentbus start); agentbus ui has no agents: use agentbus replay --agent');
  if (typeof agent !== 'string' || agent === '' || typeof type !== 'string' || type === '') {
    throw invalid('INVALID_OPTION', `replay needs an agent and a type, got agent ${JSON.stringify(agent)} and type ${JSON.stringify(type)}`);
  }
  if (publish !== undefined && typeof publish !== 'boolean') throw invalid('INVALID_OPTION', `invalid replay publish ${JSON.stringify(publish)}: expected true or false`);
  const r = await c.host.replay(agent, { types: [type], from: replayBound('from', from), to: replayBound('to', to), publish: publish === true });
  return {
    agent,
    type,
    handled: r.handled,
    failed: r.failed.length,
    failures: r.failed.slice(0, REPLAY_LISTED),
    published: { count: r.published.count, stored: r.published.stored, events: r.published.events.slice(0, REPLAY_LISTED) },
  };
}

/** A replay bound as the CLI reads `--from`/`--to`: empty is none, 12+ digits epoch ms, any other string a time or position (checked by the bus). */
function replayBound(name: string, v: unknown): string | number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalid('INVALID_OPTION', `invalid replay ${name} ${JSON.stringify(v)}: expected an ISO-8601 time, epoch ms or a position`);
  return /^\d{12,}$/.test(v) ? Number(v) : v;
}

function need(q: Query, name: string): string {
  const v = q.get(name);
  if (!v) throw invalid('INVALID_OPTION', `missing ${name}: the request needs ?${name}=...`);
  return v;
}

function optionalNumber(q: Query, name: string): number | string | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

/** A time filter: ISO-8601 or epoch milliseconds; the message names the bad value. */
function time(q: Query, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw invalid('INVALID_OPTION', `invalid ${name} ${JSON.stringify(v)}: expected an ISO-8601 time or epoch milliseconds`);
  return ms;
}

/**
 * Dead letters by group and type (in the store's query), then by subject, event id, reason and
 * error text (each a case-insensitive substring) and failure time (from/to inclusive), newest
 * first. Reads at most SEARCH_SCAN from the store; `scanned` and `complete` say whether the search
 * saw them all.
 */
export async function searchDeadLetters(bus: Bus, q: Query): Promise<{ items: DeadLetter[]; scanned: number; complete: boolean }> {
  const limit = int('limit', optionalNumber(q, 'limit'), 100, 1, 1000);
  const from = time(q, 'from');
  const to = time(q, 'to');
  if (from !== undefined && to !== undefined && from > to) throw invalid('INVALID_OPTION', `from ${q.get('from')} is after to ${q.get('to')}: nothing lies between them`);
  const has = (field: string | null | undefined, name: string) => {
    const want = q.get(name)?.toLowerCase();
    return !want || (field ?? '').toLowerCase().includes(want);
  };
  const all = await bus.deadLetters.list({ group: q.get('group') || undefined, type: q.get('type') || undefined, limit: SEARCH_SCAN });
  const hits = all.filter((d) => {
    const at = d.failedAt === null ? NaN : Date.parse(d.failedAt);
    if (from !== undefined && !(at >= from)) return false;
    if (to !== undefined && !(at <= to)) return false;
    return has(d.event?.subject, 'subject') && has(d.event?.id, 'event') && has(d.reason, 'reason') && has(d.error, 'error');
  });
  return { items: hits.reverse().slice(0, limit), scanned: all.length, complete: all.length < SEARCH_SCAN };
}

/**
 * The newest events of one type (or pattern) published since `since` (epoch ms; at most
 * TAIL_WINDOW_MS ago), at most TAIL_MAX, oldest first: the page polls with the last time it saw.
 */
async function tail(bus: Bus, q: Query): Promise<{ events: CloudEvent[]; now: number }> {
  const type = need(q, 'type');
  const now = Date.now();
  const since = Math.max(time(q, 'since') ?? now - 60_000, now - TAIL_WINDOW_MS);
  const events: CloudEvent[] = [];
  await bus.replay({ types: [type], from: since }, (e) => {
    events.push(e);
    if (events.length > TAIL_MAX) events.shift();
  });
  return { events, now };
}

/**
 * Pending delayed events (delayed publishes, agents' reminders, schedule ticks) of one type or
 * all, `order` earliest (default) or latest due first, a page of `limit` (default 100, at most
 * 1000) from `offset`. Reads at most SCHEDULES_SCAN from the store, earliest due first; `total`
 * and `complete` say whether it saw them all (when not, latest first is among those read).
 */
export async function listSchedules(bus: Bus, q: Query): Promise<{ items: ScheduledEvent[]; offset: number; total: number; complete: boolean }> {
  if (!bus.schedules) throw new ApiError(404, 'this store keeps no delayed events');
  const limit = int('limit', optionalNumber(q, 'limit'), 100, 1, 1000);
  const offset = int('offset', optionalNumber(q, 'offset'), 0, 0, SCHEDULES_SCAN);
  const order = q.get('order') || 'earliest';
  if (order !== 'earliest' && order !== 'latest') throw invalid('INVALID_OPTION', `invalid order ${JSON.stringify(order)}: expected earliest or latest`);
  const all = await bus.schedules.list({ type: q.get('type') || undefined, limit: SCHEDULES_SCAN });
  if (order === 'latest') all.reverse();
  return { items: all.slice(offset, offset + limit), offset, total: all.length, complete: all.length < SCHEDULES_SCAN };
}
