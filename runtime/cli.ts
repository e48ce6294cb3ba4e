#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { createBus } from './config.js';
import { AgentHost } from './host.js';
import { resolveAgent } from './agent-spec.js';
import { commandLogger, printable } from './cli-logger.js';
import { loadAgents } from './loader.js';
import { start, startOptions } from './start.js';
import { doctor } from './doctor.js';
import { retryOrPurge } from './dead-letter-ops.js';
import { removeScheduled } from './schedule-ops.js';
import { reminderName } from './schedules.js';
import { actionsFromEnv } from './ui/index.js';
import { serveUi } from './ui/serve.js';
import { int } from '../bus/validate.js';
import type { Bus, DeadLetter } from '../bus/contract.js';
import type { KeyWait } from '../bus/keyed/contract.js';
import type { AgentReplayResult } from './host.js';
import { AgentbusError, ConnectionError, invalid } from '../bus/errors.js';
import { DEFAULT_SQLITE_PATH } from '../adapters/sqlite/defaults.js';
import { suggest } from '../bus/suggest.js';
import { expandTypes } from '../bus/event.js';
import { bound, durationMs, helpTopic, parseCommandLine, UsageError } from './cli-args.js';
import { helpText, USAGE } from './cli-commands.js';

async function main(argv: string[]): Promise<number> {
  const line = parseCommandLine(argv);
  if (line.kind === 'version') {
    // dist/runtime/cli.js when installed, runtime/cli.ts under `npm run agentbus`.
    const candidates = ['../../package.json', '../package.json'].map((p) => new URL(p, import.meta.url));
    const pkg = candidates.map((u) => { try { return JSON.parse(readFileSync(u, 'utf8')) as { name: string; version: string }; } catch { return null; } }).find((p) => p?.name === 'agentbus');
    console.log(pkg?.version ?? 'unknown');
    return 0;
  }
  if (line.kind === 'help') {
    console.log(line.command === undefined ? USAGE : helpText(line.command));
    return 0;
  }
  if (line.kind === 'usage') {
    console.error(USAGE);
    return 2;
  }
  const { command, args, values } = line;
  if (command === 'start') return start(startOptions(values));
  if (command === 'ui') return ui(values);
  if (command === 'doctor') return doctor({ json: values.json === true, strict: values.strict === true });
  // Inspection opens the store read-only: it never creates a SQLite file nor changes one.
  const inspect = command === 'stats' || (command === 'dlq' && (args[0] === 'ls' || args[0] === 'show')) || (command === 'state' && args[0] !== 'rm') || (command === 'schedules' && args[0] === 'ls');
  // Only start and publish make a store. Every other command works on what is stored (retry, purge,
  // erase, cancel, rewind, replay): on a SQLite path with no file it would create an empty database
  // and find nothing in it (a mistyped AGENTBUS_SQLITE_PATH), so it fails as the inspecting ones do.
  if (!inspect && command !== 'publish') sqliteFileMustExist(command === 'replay' ? `replay ${values.agent !== undefined ? '--agent' : '--group'}` : line.name);
  const logger = commandLogger();
  if (command === 'replay' && values.agent !== undefined) return replayToAgent(values, logger);
  // No spool (whatever AGENTBUS_SPOOL_PATH says): a command against a Redis that is down fails rather
  // than leaving its writes in a spool, and never takes the spool of a host started beside it. No
  // mover either (moveDue): a command ends at once, and the hosts move what `publish --delay` stores.
  const bus = await createBus({ logger, spool: false, moveDue: false, ...(inspect ? { readonly: true } : {}) });
  try {
    return await run(bus, command, args, values);
  } finally {
    await bus.close();
  }
}

/** CONNECTION_FAILED (exit 1) when the store is a SQLite file (from the environment) that does not exist. */
function sqliteFileMustExist(what: string, env: NodeJS.ProcessEnv = process.env): void {
  if ((env.AGENTBUS_ADAPTER || 'sqlite') !== 'sqlite') return;
  const path = env.AGENTBUS_SQLITE_PATH || DEFAULT_SQLITE_PATH;
  if (path === ':memory:' || existsSync(path)) return;
  throw new ConnectionError('CONNECTION_FAILED', `no agentbus database at ${resolve(path)}: ${what} works only on what is stored, and creates nothing (check AGENTBUS_SQLITE_PATH)`);
}

/**
 * `agentbus ui`: the admin UI against the store until SIGTERM/SIGINT. Read-only, it opens a SQLite
 * file read-only too (never creating it); with --allow-actions, for writing.
 */
async function ui(o: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const pick = (flag: string, name: string) => (o[flag] ?? env[name]) || undefined;
  const portText = pick('port', 'AGENTBUS_UI_PORT') ?? '9465';
  const port = int('port (--port, AGENTBUS_UI_PORT)', /^\d+$/.test(String(portText)) ? Number(portText) : portText, 9465, 0, 65535);
  const hostname = String(pick('host', 'AGENTBUS_UI_HOST') ?? '127.0.0.1');
  const actions = o['allow-actions'] === true || actionsFromEnv(env);
  // Read-only, a missing file is refused by the read-only open; for writing it must be refused here.
  if (actions) sqliteFileMustExist(o['allow-actions'] === true ? 'ui --allow-actions' : 'ui (AGENTBUS_UI_ACTIONS)', env);
  const logger = commandLogger();
  const bus = await createBus({ logger, spool: false, ...(actions ? {} : { readonly: true }) });
  let http: Awaited<ReturnType<typeof serveUi>>;
  try {
    http = await serveUi({ bus, port, hostname, actions });
  } catch (err) {
    await bus.close();
    throw invalid('INVALID_OPTION', `cannot serve the UI on ${hostname}:${port} (${(err as Error).message}); choose another --port (0 picks a free one)`);
  }
  console.log(`admin UI on ${http.url}/ui/ (${actions ? 'actions allowed' : 'read-only'}); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  await http.close();
  await bus.close();
  return 0;
}

function typesFlag(o: Record<string, string | boolean | undefined>, need: boolean): string[] | undefined {
  if (typeof o.types !== 'string' || o.types === '') {
    if (need) throw new UsageError('replay needs --types T[,T...]');
    return undefined;
  }
  return o.types.split(',').map((t) => t.trim()).filter(Boolean);
}

/**
 * `replay --agent NAME`: a fresh instance of the agent gets the stored events; nothing moves. What
 * the agent publishes meanwhile is captured and printed, and stored only with `--publish`.
 */
async function replayToAgent(o: Record<string, string | boolean | undefined>, logger: Logger): Promise<number> {
  const loaded = await loadAgents(String(o.agents ?? (process.env.AGENTBUS_AGENTS || './agents')));
  const bus = await createBus({ logger, spool: false, moveDue: false });
  try {
    const host = new AgentHost({ bus, agents: loaded.agents, logger, catchUncaught: false });
    const agent = loaded.agents.map(resolveAgent).find((a) => a.name === o.agent);
    const types = typesFlag(o, false) ?? (agent ? [...(agent.cls.subscriptions ?? [])] : undefined);
    const progress = progressBar(bus, types ?? []);
    const result = await host.replay(String(o.agent), { types, from: bound(o.from), to: bound(o.to), onProgress: await progress.start(), publish: o.publish === true });
    progress.end();
    return report(result, o);
  } finally {
    await bus.close();
  }
}

/** Characters of each captured event's data JSON that replay --agent prints. */
const DATA_SHOWN = 200;

function report(result: AgentReplayResult, o: Record<string, string | boolean | undefined>): number {
  if (o.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`replayed ${result.handled + result.failed.length}: ${result.handled} handled, ${result.failed.length} failed`);
    for (const f of result.failed.slice(0, 20)) console.log(printable(`  failed ${f.type} ${f.position} ${f.id}: ${f.error}`));
    const p = result.published;
    if (p.stored) console.log(`published ${p.count} event${p.count === 1 ? '' : 's'} (stored: --publish)`);
    else if (p.count > 0) console.log(`would have published ${p.count} event${p.count === 1 ? '' : 's'} (not stored; --publish stores them):`);
    for (const e of p.stored ? [] : p.events.slice(0, 20)) {
      const data = JSON.stringify(e.data) ?? 'undefined';
      console.log(printable(`  ${e.request ? 'request ' : ''}${e.type} ${e.id} ${data.length > DATA_SHOWN ? `${data.slice(0, DATA_SHOWN)}...` : data}${e.request ? ' (not sent: no reply)' : ''}`));
    }
    if (!p.stored && p.count > 20) console.log(`  ... and ${p.count - 20} more (--json lists the first ${p.events.length})`);
  }
  return result.failed.length === 0 ? 0 : 1;
}

/** A one-line progress bar on stderr when it is a terminal; the total is the topics' current length. */
function progressBar(bus: Bus, types: string[]) {
  const tty = process.stderr.isTTY === true;
  let total = 0;
  return {
    async start(): Promise<((done: number) => void) | undefined> {
      if (!tty) return undefined;
      const stats = await bus.stats();
      const wanted = new Set(expandTypes(types, stats.map((t) => t.type)));
      total = stats.filter((t) => wanted.has(t.type)).reduce((n, t) => n + t.length, 0);
      return (done) => {
        const pct = total ? Math.min(100, Math.floor((done / total) * 100)) : 100;
        const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
        process.stderr.write(`\r[${bar}] ${pct}% ${done}/${total}`);
      };
    },
    end(): void {
      if (tty) process.stderr.write('\n');
    },
  };
}

async function run(bus: Bus, command: string, args: string[], o: Record<string, string | boolean | undefined>): Promise<number> {
  const print = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  if (command === 'publish') {
    const [type, json] = args;
    if (type === undefined || json === undefined) throw new UsageError('publish needs <type> <json>');
    let data: unknown;
    try {
      data = JSON.parse(json);
    } catch (err) {
      throw new UsageError(`publish: <json> is not valid JSON (${(err as Error).message})`);
    }
    const when = o.delay !== undefined ? { delay: durationMs('--delay', String(o.delay)) } : o.at !== undefined ? { at: bound(o.at) } : {};
    console.log(await bus.publish(type, data, { subject: o.subject as string | undefined, id: o.id as string | undefined, ...when }));
    return 0;
  }
  if (command === 'replay') {
    if (typeof o.group !== 'string') throw new UsageError('replay needs --agent NAME (hand events to an agent) or --group G (rewind a group)');
    if (o.publish) throw new UsageError('--publish goes with replay --agent (a rewound group publishes through its running consumers)');
    const types = typesFlag(o, true)!;
    const exact = await expandForGroup(bus, o.group, types);
    for (const type of exact) await bus.rewind({ group: o.group, type, from: bound(o.from) ?? 'earliest' });
    if (o.json) print({ group: o.group, types: exact, from: o.from ?? 'earliest' });
    else console.log(`rewound group ${o.group} on ${exact.join(', ') || '(no stored topic matches)'} from ${o.from ?? 'earliest'}; its running consumers handle them again`);
    return 0;
  }
  if (command === 'rewind') {
    if (typeof o.group !== 'string' || typeof o.type !== 'string') throw new UsageError('rewind needs --group G --type T');
    await bus.rewind({ group: o.group, type: o.type, from: bound(o.from) ?? 'earliest' });
    if (o.json) print({ group: o.group, type: o.type, from: o.from ?? 'earliest' });
    else console.log(`rewound group ${o.group} on ${o.type} from ${o.from ?? 'earliest'}`);
    return 0;
  }
  if (command === 'stats') {
    const stats = await bus.stats();
    if (o.json) return print(stats), 0;
    const rows = stats.flatMap((t) =>
      t.groups.length === 0 ? [[t.type, t.length, t.due ?? '-', '-', '-', '-', '-', '-']] : t.groups.map((g) => [t.type, t.length, t.due ?? '-', g.group, g.consumers, g.pending, g.lag, g.deadLetters]),
    );
    table(['TOPIC', 'LENGTH', 'DUE', 'GROUP', 'CONSUMERS', 'PENDING', 'LAG', 'DEAD'], rows);
    return 0;
  }
  if (command === 'state') return state(bus, args, o);
  if (command === 'schedules') return schedules(bus, args, o);
  const [sub, ...ids] = args;
  if (sub === 'ls') {
    const limit = o.limit === undefined ? 100 : Number(o.limit);
    const list = await bus.deadLetters.list({ group: o.group as string | undefined, type: o.type as string | undefined, limit });
    if (list.length === 0 && typeof o.group === 'string') console.error(printable(await noDeadLetters(bus, o.group, o.type as string | undefined)));
    if (o.json) return print(list), 0;
    table(['ID', 'GROUP', 'TYPE', 'EVENT', 'SUBJECT', 'REASON', 'ATTEMPTS', 'FAILED AT', 'ERROR'], list.map(dlRow));
    // A full page may not be all of them: say so, as state ls and state waits do.
    if (list.length === limit) console.log(`(${limit} shown, the oldest: there may be more; narrow with --group or --type, or raise --limit)`);
    return 0;
  }
  if (sub === 'show') {
    if (ids.length !== 1) throw new UsageError('dlq show needs one <id>');
    const dl = await bus.deadLetters.get(ids[0]);
    if (dl === null) {
      console.error(printable(`agentbus: no dead letter ${JSON.stringify(ids[0])}: ${GONE}`));
      return 1;
    }
    // The stack as an array of its lines: readable in the printed JSON (one string would be one long line).
    return print(dl.stack === undefined ? dl : { ...dl, stack: dl.stack.split('\n') }), 0;
  }
  if (sub === 'retry' || sub === 'purge') {
    if (ids.length === 0) throw new UsageError(`dlq ${sub} needs at least one <id>`);
    // Each id not found is named (a typo, or already retried or purged); the others are still done.
    const result = await retryOrPurge(bus, sub, ids, { fresh: o.fresh === true });
    const { done: n, missing, items } = result;
    const of = n + missing.length; // an id named twice counts once
    if (missing.length > 0) console.error(printable(`agentbus: no dead letter ${missing.map((id) => JSON.stringify(id)).join(', ')}: ${GONE}`));
    if (o.json) return print({ ...result, of }), n === of ? 0 : 1;
    const verb = sub === 'retry' ? 'retried' : 'purged';
    // What each id was: a retried id names nothing afterwards, so the event id and group are what find it again.
    for (const d of items) console.log(printable(`${verb} ${d.id}: event ${d.eventId ?? '(malformed)'} of ${d.type}, ${sub === 'retry' ? 'back to group' : 'group'} ${d.group}`));
    const groups = [...new Set(items.map((d) => d.group))];
    const again = sub === 'retry' && n > 0 ? `; an event that fails again becomes a new dead letter with a new id (agentbus dlq ls${groups.length === 1 ? ` --group ${groups[0]}` : ''})` : '';
    console.log(printable(`${verb} ${n} of ${of}${again}`));
    return n === of ? 0 : 1;
  }
  throw new UsageError(`unknown dlq command ${JSON.stringify(sub)}: expected ls, show, retry or purge`);
}

/**
 * The line `dlq ls --group G` prints on stderr when it lists nothing (the listing, empty, still
 * prints, exit 0): the group has no dead letters; or there is no such group in the store (no
 * topic's stats name it: often a mistyped name), with the nearest known group. Asked only then.
 */
async function noDeadLetters(bus: Bus, group: string, type: string | undefined): Promise<string> {
  const groups = [...new Set((await bus.stats()).flatMap((t) => t.groups.map((g) => g.group)))];
  if (groups.includes(group)) return `agentbus: group ${group} has no dead letters${type === undefined ? '' : ` of type ${type}`}`;
  const near = suggest(group, groups);
  return `agentbus: no dead letters of group ${JSON.stringify(group)}: no such group in this store${near ? `, ${near}` : ''} (agentbus stats lists the groups)`;
}

/** Why an id names no dead letter, and where to look: a retried one that failed again has a new id. */
const GONE = 'retried, purged or never there; a retried event that failed again is a new dead letter with a new id (agentbus dlq ls lists them)';

/** A wait as one line shows it: `approval.granted until <deadline>`, and whether it has ended. */
function describeWait(w: KeyWait): string {
  const status = waitStatus(w);
  return `${w.type} until ${w.deadline.toISOString()}${status === 'waiting' ? '' : ` (${status})`}`;
}

/** waiting; matched (an event was taken for it); past deadline (its handler gets WaitTimeoutError, or did). */
function waitStatus(w: KeyWait): string {
  if (w.matched) return 'matched';
  return w.deadline.getTime() <= Date.now() ? 'past deadline' : 'waiting';
}

/**
 * `state get|ls|waits|rm`: keyed agents' state, durable waits and steps through bus.keys (the group
 * of a keyed agent is its name).
 * rm, like dlq purge, names each key that had nothing stored and still erases the others (exit 1 then).
 */
async function state(bus: Bus, args: string[], o: Record<string, string | boolean | undefined>): Promise<number> {
  const print = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  const keys = bus.keys;
  if (keys === undefined) throw new Error('this store keeps no keyed state');
  const [sub, agent, ...rest] = args;
  if (sub === 'get') {
    const [s, waits, steps] = await Promise.all([keys.get(agent, rest[0]), keys.waits(agent, { key: rest[0] }), keys.steps(agent, { key: rest[0] })]);
    const durable = {
      waits: waits.map(({ type, deadline, matched }) => ({ type, deadline, matched })),
      steps: steps.map(({ name, recorded, result }) => ({ name, recorded, result })),
    };
    if (s === null) {
      // A key whose first handler still runs or waits has no state yet: say so rather than only "no state".
      const recorded = steps.filter((x) => x.recorded).length;
      const running = [
        waits.length === 0 ? '' : `${waits.length} durable wait(s): ${waits.map(describeWait).join(', ')}`,
        recorded === 0 ? '' : `${recorded} step result(s) recorded`,
      ].filter((x) => x !== '');
      if (running.length > 0) {
        console.error(printable(`agentbus: no state yet for key ${JSON.stringify(rest[0])} of agent ${agent}; its handler has ${running.join(' and ')}`));
        return print({ key: rest[0], state: null, ...durable }), 1;
      }
      console.error(printable((await unknownAgent(keys, agent)) ?? `agentbus: no state for key ${JSON.stringify(rest[0])} of agent ${agent} (agentbus state ls ${agent} lists its keys)`));
      return 1;
    }
    return print({ ...s, ...durable }), 0;
  }
  if (sub === 'waits') {
    const limit = o.limit === undefined ? 100 : Number(o.limit);
    const list = await keys.waits(agent, { key: o.key as string | undefined, limit });
    if (list.length === 0) await noteUnknownAgent(keys, agent);
    if (o.json) return print(list), 0;
    table(['KEY', 'TYPE', 'DEADLINE', 'STATUS', 'ID'], list.map((w) => [w.key, w.type, w.deadline.toISOString(), waitStatus(w), w.id]));
    if (list.length === limit) console.log(`(${limit} shown: narrow with --key or raise --limit)`);
    return 0;
  }
  if (sub === 'ls' && agent === undefined) {
    const groups = await keys.groups();
    if (o.json) return print(groups), 0;
    table(['AGENT'], groups.map((g) => [g]));
    return 0;
  }
  if (sub === 'ls') {
    const limit = o.limit === undefined ? 100 : Number(o.limit);
    const list = await keys.list(agent, { after: o.after as string | undefined, limit });
    if (list.length === 0) await noteUnknownAgent(keys, agent);
    if (o.json) return print(list), 0;
    table(['KEY', 'VERSION', 'BYTES', 'UPDATED AT'], list.map((k) => [k.key, k.version, k.bytes, k.updatedAt.toISOString()]));
    if (list.length === limit) console.log(printable(`(${limit} shown; the next page: agentbus state ls ${agent} --after ${JSON.stringify(list[limit - 1].key)})`));
    return 0;
  }
  // rm; a key named twice is erased (and counted) once. One key a call, so each key with nothing
  // stored (no state, no step or wait record) can be named; a key with records only counts as erased.
  const wanted = [...new Set(rest)];
  const missing: string[] = [];
  for (const k of wanted) if ((await keys.remove(agent, [k])) === 0) missing.push(k);
  if (missing.length > 0) {
    const unknown = missing.length === wanted.length ? await unknownAgent(keys, agent) : null;
    console.error(printable(unknown ?? `agentbus: nothing stored for key ${missing.map((k) => JSON.stringify(k)).join(', ')} of agent ${agent} (agentbus state ls ${agent} lists its keys)`));
  }
  const n = wanted.length - missing.length;
  if (o.json) print({ erased: wanted.filter((k) => !missing.includes(k)), missing, of: wanted.length });
  else console.log(`erased ${n} of ${wanted.length}`);
  return n === wanted.length ? 0 : 1;
}

/**
 * When `agent` is no keyed agent the store knows (none with state or an owner; a mistyped name),
 * the line saying so, with the nearest known name: an empty listing or a missing key then does not
 * look like an agent with nothing stored. Asked only once a command found nothing.
 */
async function unknownAgent(keys: NonNullable<Bus['keys']>, agent: string): Promise<string | null> {
  const groups = await keys.groups();
  if (groups.includes(agent)) return null;
  const near = suggest(agent, groups);
  return `agentbus: no keyed agent ${JSON.stringify(agent)} in this store${near ? `: ${near}` : ''} (agentbus state ls lists the keyed agents)`;
}

/** unknownAgent's line on stderr, when there is one; the listing (empty) is still printed, exit 0. */
async function noteUnknownAgent(keys: NonNullable<Bus['keys']>, agent: string): Promise<void> {
  const line = await unknownAgent(keys, agent);
  if (line !== null) console.error(printable(line));
}

/**
 * `schedules ls|rm`: pending delayed events through bus.schedules. rm by ids (checked by
 * removeScheduled, as the admin UI's cancel), like dlq purge, counts the ids that were not pending
 * and still removes the others (exit 1 then); rm --name, exit 1 when
 * nothing was pending under the name.
 */
async function schedules(bus: Bus, args: string[], o: Record<string, string | boolean | undefined>): Promise<number> {
  const s = bus.schedules;
  if (s === undefined) throw new Error('this store keeps no delayed events');
  const [sub, ...ids] = args;
  if (sub === 'ls') {
    const list = await s.list({ type: o.type as string | undefined, limit: o.limit === undefined ? undefined : Number(o.limit) });
    if (o.json) return console.log(JSON.stringify(list, null, 2)), 0;
    table(['ID', 'TYPE', 'DUE AT', 'NAME', 'SUBJECT', 'EVENT'], list.map((e) => [e.id, e.type, e.dueAt, e.name ?? '-', e.event?.subject ?? '-', e.event?.id ?? '(malformed)']));
    return 0;
  }
  if (typeof o.name === 'string') {
    const name = typeof o.agent === 'string' ? reminderName(o.agent, o.key as string | undefined, o.name) : o.name;
    const found = await s.cancel(name);
    if (!found) console.error(printable(`agentbus: nothing pending under the name ${name} (agentbus schedules ls lists them)`));
    console.log(`cancelled ${found ? 1 : 0} of 1`);
    return found ? 0 : 1;
  }
  const { removed: n, of } = await removeScheduled(bus, ids);
  if (n < of) console.error(printable(`agentbus: ${of - n} of the ids were not pending (already fired, removed, or unknown; agentbus schedules ls lists them)`));
  console.log(`removed ${n} of ${of}`);
  return n === of ? 0 : 1;
}

/** Patterns in --types become the topics they match that the group reads (rewind works on one topic at a time). */
async function expandForGroup(bus: Bus, group: string, types: string[]): Promise<string[]> {
  if (!types.some((t) => t.endsWith('*'))) return types;
  const read = (await bus.stats()).filter((t) => t.groups.some((g) => g.group === group)).map((t) => t.type);
  return expandTypes(types, read);
}

/** One dead letter as a `dlq ls` row; SUBJECT is the event's subject, '-' without one (or without a decoded event). */
const dlRow = (d: DeadLetter) => [d.id, d.group, d.type, d.event?.id ?? '(malformed)', d.event?.subject ?? '-', d.reason, d.attempts, d.failedAt ?? '(invalid)', d.error.slice(0, 60)];

function table(head: string[], rows: unknown[][]): void {
  const cells = [head, ...rows.map((r) => r.map((c) => printable(String(c))))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  for (const r of cells) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err) => {
    if (err instanceof UsageError) {
      // One line: what is wrong, and where the command's usage is.
      console.error(`agentbus: ${err.message} (see agentbus help${helpTopic ? ` ${helpTopic.split(' ')[0]}` : ''})`);
      process.exitCode = 2;
    } else {
      const e = err as Error;
      console.error(`agentbus: ${e instanceof AgentbusError ? `${e.code}: ` : ''}${e.message}`);
      process.exitCode = e instanceof AgentbusError && e.code.startsWith('INVALID') ? 2 : 1;
    }
  },
);
