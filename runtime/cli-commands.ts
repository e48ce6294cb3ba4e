// The commands of `agentbus` as one table: each command's usage, what it does, its options and
// positional arguments, and the help made from it (`agentbus help [<command>]`, the usage text).
// Reading a command line against it is cli-args.ts; running a command, cli.ts.
import { MAX_STATE_LIST } from '../bus/keyed/states.js';

/** Every option of every command: its kind and the placeholder of its value. */
export const OPTIONS = {
  json: { type: 'boolean' },
  subject: { type: 'string', arg: 'S' },
  id: { type: 'string', arg: 'ID' },
  delay: { type: 'string', arg: 'D' },
  at: { type: 'string', arg: 'TIME' },
  group: { type: 'string', arg: 'G' },
  type: { type: 'string', arg: 'T' },
  limit: { type: 'string', arg: 'N' },
  agents: { type: 'string', arg: 'PATH' },
  agent: { type: 'string', arg: 'NAME' },
  types: { type: 'string', arg: 'T[,T]' },
  from: { type: 'string', arg: 'B' },
  to: { type: 'string', arg: 'B' },
  port: { type: 'string', arg: 'N' },
  'http-host': { type: 'string', arg: 'H' },
  host: { type: 'string', arg: 'H' },
  'allow-actions': { type: 'boolean' },
  strategy: { type: 'string', arg: 'S' },
  'exit-on-failure': { type: 'boolean' },
  strict: { type: 'boolean' },
  publish: { type: 'boolean' },
  after: { type: 'string', arg: 'K' },
  name: { type: 'string', arg: 'N' },
  key: { type: 'string', arg: 'K' },
  fresh: { type: 'boolean' },
} as const satisfies Record<string, { type: 'string' | 'boolean'; arg?: string }>;
export type OptionName = keyof typeof OPTIONS;

/** Taken by every command: `agentbus <command> --help`, `agentbus --version`. */
export const GLOBAL = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } } as const;

export interface Command {
  /** Usage lines, without the leading `agentbus `. */
  synopsis: string[];
  /** What it does, for `agentbus help <command>`. */
  about: string;
  /** Its options, each with what it means for this command. */
  options: Partial<Record<OptionName, string>>;
  /** Positional arguments after the command words: the fewest, the most, and how the usage names them. */
  args: { min: number; max: number; name: string };
}

const BOUND = 'an ISO-8601 time, epoch milliseconds (12 digits or more) or a store position; --from also takes earliest (the oldest stored event, as no --from)';
const STORE = 'The store comes from the environment (agentbus help).';
/** Said by each command that changes (or replays) what is stored: only start and publish create a store. */
const MUST_EXIST = 'On a SQLite path with no file it fails (exit 1) rather than create an empty database. ';

/** `dlq`, `state` and `schedules` are families: their subcommands are commands of their own (`dlq ls`, `state get`, ...). */
export const COMMANDS: Record<string, Command> = {
  start: {
    synopsis: ['start [--agents PATH] [--port N] [--http-host H] [--strategy S] [--exit-on-failure]'],
    about: 'Runs the host: the agents of a file, a folder or an installed module, supervised, with /healthz, /readyz, /metrics, /status and the admin UI (/ui; read-only unless AGENTBUS_UI_ACTIONS=1) over HTTP. SIGTERM or SIGINT drains the handlers in flight and exits 0. ' + STORE,
    options: {
      agents: 'file, folder or module with the agents (AGENTBUS_AGENTS; default ./agents)',
      port: 'HTTP port, 0 picks a free one (AGENTBUS_HTTP_PORT; default 9464)',
      'http-host': 'interface to serve HTTP on (AGENTBUS_HTTP_HOST; default 127.0.0.1)',
      strategy: 'supervisor strategy: one_for_one, one_for_all or rest_for_one (AGENTBUS_STRATEGY)',
      'exit-on-failure': 'exit 1 when an agent fails past its restart intensity, instead of serving unready (AGENTBUS_EXIT_ON_FAILURE)',
    },
    args: { min: 0, max: 0, name: '' },
  },
  publish: {
    synopsis: ['publish <type> <json> [--subject S] [--id ID] [--delay D | --at TIME]'],
    about: "Stores one event of <type> whose data is <json> (quote it: '{\"n\":1}'), and prints its id. " + STORE,
    options: {
      subject: 'the event subject (events of one subject keep their order under orderBy: subject)',
      id: 'the event id (default a new UUID); the same id again within the dedup window is stored once',
      delay: 'deliver it this long from now, never earlier: milliseconds or a duration (250ms, 30s, 5m, 2h, 1d)',
      at: 'deliver it at this time, never earlier: an ISO-8601 time or epoch milliseconds',
    },
    args: { min: 2, max: 2, name: '<type> <json>' },
  },
  replay: {
    synopsis: ['replay --agent NAME [--agents PATH] [--types T[,T]] [--from B] [--to B] [--publish] [--json]', 'replay --group G --types T[,T] [--from B] [--json]'],
    about: `With --agent: hands stored events to a fresh instance of the agent, moving no group and acknowledging nothing; without --types it replays the agent's subscriptions. Exit 1 when a replayed event failed. With --group: rewinds that running group on those types, so its consumers handle the events again. A bound B is ${BOUND}. ` + MUST_EXIST + STORE,
    options: {
      agent: 'the agent to hand the events to',
      publish: "with --agent: store what the agent publishes (default: print it, store nothing; the agent sees ctx.replaying)",
      agents: 'where that agent is defined (AGENTBUS_AGENTS; default ./agents)',
      types: 'types and patterns (a.*), comma-separated; with --agent default its subscriptions',
      from: 'first event (default the oldest stored)',
      to: 'last event, with --agent (default the newest)',
      group: 'the consumer group to rewind',
      json: 'print the result as JSON (with --group: { group, types, from })',
    },
    args: { min: 0, max: 0, name: '' },
  },
  rewind: {
    synopsis: ['rewind --group G --type T [--from B] [--json]'],
    about: `Delivers a group's events of one type again, from B (${BOUND}; default the earliest); for several types or a pattern, replay --group. ` + MUST_EXIST + STORE,
    options: { group: 'the consumer group', type: 'the type (one topic; not a pattern)', from: 'where to start again (default earliest)', json: 'print { group, type, from } as JSON' },
    args: { min: 0, max: 0, name: '' },
  },
  stats: {
    synopsis: ['stats [--json]'],
    about: 'Prints each topic with its length and DUE (its delayed events not yet due), and each group reading it with its consumers, pending, lag and dead letters. Opens a SQLite file read-only and never creates it. ' + STORE,
    options: { json: 'print JSON' },
    args: { min: 0, max: 0, name: '' },
  },
  'dlq ls': {
    synopsis: ['dlq ls [--group G] [--type T] [--limit N] [--json]'],
    about: "Lists dead letters, oldest first: ID, GROUP, TYPE, EVENT, SUBJECT (the event's, '-' without one), REASON, ATTEMPTS, FAILED AT, ERROR; --json prints each whole (the subject in its event). Opens a SQLite file read-only. " + STORE,
    options: { group: 'only this group (with none listed, a note on stderr says so, or that no such group is stored)', type: 'only this type (one exact type; not a pattern)', limit: 'at most N (1 to 100000; default 100)', json: 'print JSON' },
    args: { min: 0, max: 0, name: '' },
  },
  'dlq show': {
    synopsis: ['dlq show <id>'],
    about: 'Prints one dead letter (the event, the error, its stack as lines, the attempts) as JSON; exit 1 when there is none with that id. Opens a SQLite file read-only. ' + STORE,
    options: {},
    args: { min: 1, max: 1, name: '<id>' },
  },
  'dlq retry': {
    synopsis: ['dlq retry <id...> [--fresh] [--json]'],
    about: "Hands dead letters back to the group that failed them, with fresh attempts, and prints each one retried (its id, event id, type and group); exit 1 when an id is not a dead letter (it is named; the others are still retried). A retried dead letter's id names nothing afterwards: if its event fails again it becomes a new dead letter with a new id (the same event id and group; dlq ls --group G finds it). A keyed handler's run of the event gets the ctx.step results and waits its failed runs recorded, unless --fresh. " + MUST_EXIST + STORE,
    options: { fresh: 'first remove the durable step and wait records of the event (its steps run again, its waits start over)', json: 'print { done, missing, items: [{ id, group, type, eventId }], of } as JSON' },
    args: { min: 1, max: Infinity, name: '<id...>' },
  },
  'dlq purge': {
    synopsis: ['dlq purge <id...> [--json]'],
    about: "Removes dead letters for good, with the durable step and wait records of their events' keyed handler runs, and prints each one purged; exit 1 when an id is not a dead letter (it is named; the others are still purged). " + MUST_EXIST + STORE,
    options: { json: 'print { done, missing, items: [{ id, group, type, eventId }], of } as JSON' },
    args: { min: 1, max: Infinity, name: '<id...>' },
  },
  'state get': {
    synopsis: ['state get <agent> <key>'],
    about: "Prints a keyed agent's state of one key (the state, its version, when it last changed) as JSON; exit 1 when the key has none. Opens a SQLite file read-only. " + STORE,
    options: {},
    args: { min: 2, max: 2, name: '<agent> <key>' },
  },
  'state ls': {
    synopsis: ['state ls [<agent>] [--after K] [--limit N] [--json]'],
    about: "With <agent>: the keys of that keyed agent with state, in key order, with their version, size (bytes of JSON) and last change; a full page ends with the --after to read on. Without: the keyed agents (groups) with state or an owner. Opens a SQLite file read-only. " + STORE,
    options: { after: 'with <agent>: keys after K (the last key of the page before)', limit: `with <agent>: at most N keys (1 to ${MAX_STATE_LIST}; default 100)`, json: 'print JSON' },
    args: { min: 0, max: 1, name: '[<agent>]' },
  },
  'state waits': {
    synopsis: ['state waits <agent> [--key K] [--limit N] [--json]'],
    about: "The durable waits (ctx.waitFor, and durable requests: keyed ctx.request, listed as type `request <type>`) a keyed agent's handlers have recorded, by key then deadline: the awaited type, the deadline, and whether the wait is still waiting, matched (an event or the reply was taken for it) or past its deadline. A record stays until the event whose handler waited is committed. Opens a SQLite file read-only. " + STORE,
    options: { key: 'only the waits of key K', limit: `at most N (1 to ${MAX_STATE_LIST}; default 100)`, json: 'print JSON' },
    args: { min: 1, max: 1, name: '<agent>' },
  },
  'state rm': {
    synopsis: ['state rm <agent> <key...> [--json]'],
    about: "Erases keys from the store for good (the GDPR erasure): their state and every durable step and wait record of their handlers; the agent's next event of such a key starts from its initialState. Exit 1 when a key had nothing stored (it is named; the others are still erased). " + MUST_EXIST + STORE,
    options: { json: 'print { erased: [keys], missing: [keys], of } as JSON' },
    args: { min: 2, max: Infinity, name: '<agent> <key...>' },
  },
  'schedules ls': {
    synopsis: ['schedules ls [--type T] [--limit N] [--json]'],
    about: "Lists pending delayed events, earliest due first: delayed publishes, agents' reminders (named ones under [agent, name, key]) and schedule ticks, with their type, due time, name, subject and entry id (for schedules rm). Opens a SQLite file read-only. " + STORE,
    options: { type: 'only this type (one exact type; not a pattern)', limit: 'at most N (1 to 100000; default 100)', json: 'print JSON' },
    args: { min: 0, max: 0, name: '' },
  },
  'schedules rm': {
    synopsis: ['schedules rm <id...>', 'schedules rm --name N [--agent NAME [--key K]]'],
    about: "Cancels pending delayed events: by entry id (schedules ls lists them), or by name: with --agent, the agent's reminder named N (with --key, that key's, for a keyed agent); without, the event published under name N. Exit 1 when one was not pending (by ids: how many, on stderr; the others are still removed). " + MUST_EXIST + STORE,
    options: { name: 'the name to cancel', agent: 'with --name: the agent whose reminder it is', key: 'with --name and --agent: the key, for a keyed agent' },
    args: { min: 0, max: Infinity, name: '<id...>' },
  },
  ui: {
    synopsis: ['ui [--port N] [--host H] [--allow-actions]'],
    about: 'Serves the admin web UI (topics and groups, lag chart, dead letters with search, keyed state, live tail) on http://H:N/ui until SIGTERM or SIGINT. Read-only unless --allow-actions; either way a SQLite path with no file fails (exit 1) and no database is created. Without a host it shows no agent lifecycle: a host serves the same UI with its agents on its own /ui. ' + STORE,
    options: {
      port: 'HTTP port, 0 picks a free one (AGENTBUS_UI_PORT; default 9465)',
      host: 'interface to serve on (AGENTBUS_UI_HOST; default 127.0.0.1: the UI shows event contents)',
      'allow-actions': 'allow retry, purge, rewind, replay and cancel, each behind a confirmation (AGENTBUS_UI_ACTIONS=1)',
    },
    args: { min: 0, max: 0, name: '' },
  },
  doctor: {
    synopsis: ['doctor [--json] [--strict]'],
    about: 'Checks the store: exit 0 healthy, 1 a check failed, 2 warnings only with --strict. ' + STORE,
    options: { json: 'print the findings as JSON', strict: 'a warning fails too (exit 2)' },
    args: { min: 0, max: 0, name: '' },
  },
};

export const TOP = [...new Set(Object.keys(COMMANDS).map((c) => c.split(' ')[0]))];
/** Each family's subcommands: `dlq ls` is FAMILIES.dlq's `ls`. */
export const FAMILIES: Record<string, string[]> = Object.fromEntries(
  ['dlq', 'state', 'schedules'].map((f) => [f, Object.keys(COMMANDS).filter((c) => c.startsWith(`${f} `)).map((c) => c.slice(f.length + 1))]),
);

export const USAGE = `usage: agentbus <command> [options]

commands:
  start [--agents PATH] [--port N] [--http-host H] [--strategy S] [--exit-on-failure]
                                                   run the host: agents from a file, folder or module
  publish <type> <json> [--subject S] [--id ID] [--delay D | --at TIME]
                                                   store one event (delivered when due), print its id
  replay --agent NAME [--agents PATH] [--types T[,T]] [--from B] [--to B] [--publish] [--json]
                                                   hand stored events to an agent (no group moves);
                                                   --types defaults to the agent's subscriptions;
                                                   what it publishes is printed, stored only with --publish
  replay --group G --types T[,T] [--from B] [--json]
                                                   rewind group G on those types
  rewind --group G --type T [--from B] [--json]    deliver a group's events again from B (default earliest)
  stats [--json]                                   topics, length, groups, pending, lag, dead letters
  dlq ls [--group G] [--type T] [--limit N] [--json]
                                                   dead letters, oldest first
  dlq show <id>                                    one dead letter, as JSON
  dlq retry <id...> [--fresh] [--json]             hand back to the group that failed them
                                                   (--fresh: without their recorded steps and waits);
                                                   failing again, an event is a new dead letter, new id
  dlq purge <id...> [--json]                       remove for good, with their step and wait records
  state get <agent> <key>                          a keyed agent's state of one key, as JSON
  state ls [<agent>] [--after K] [--limit N] [--json]
                                                   its keys with state; without <agent> the keyed agents
  state waits <agent> [--key K] [--limit N] [--json]
                                                   durable waits (ctx.waitFor) its handlers recorded
  state rm <agent> <key...> [--json]               erase keys' state, steps and waits (GDPR erasure)
  schedules ls [--type T] [--limit N] [--json]     pending delayed events, reminders and ticks
  schedules rm <id...>                             cancel pending ones by entry id
  schedules rm --name N [--agent NAME [--key K]]   cancel one by name (an agent's reminder: --agent)
  ui [--port N] [--host H] [--allow-actions]       serve the admin web UI (read-only unless --allow-actions)
  doctor [--json] [--strict]                       check the store: exit 0 healthy, 1 a check failed,
                                                   2 warnings only with --strict
  help [<command>], --help, -h                     this text, or one command's options (also <command> --help)
  --version, -v                                    print the version

A bound B is an ISO-8601 time, epoch milliseconds, or a store position (--from also earliest).
stats, dlq ls, dlq show, state get, state ls, state waits, schedules ls and ui open a SQLite file
read-only and never create it; dlq retry, dlq purge, state rm, schedules rm, rewind, replay and
ui --allow-actions refuse a missing file too: only start and publish create the database.
The store comes from the environment: AGENTBUS_ADAPTER (sqlite | redis), AGENTBUS_SQLITE_PATH
(./data/agentbus.db), REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB,
AGENTBUS_REDIS_CONNECT_TIMEOUT_MS, AGENTBUS_REDIS_LAYOUT (JSON, e.g. {"verification.*":"flat"}),
AGENTBUS_ALLOW_EVICTION; empty variables count as unset.
start also reads AGENTBUS_AGENTS (./agents), AGENTBUS_HTTP_PORT (9464), AGENTBUS_HTTP_HOST
(127.0.0.1), AGENTBUS_STRATEGY, AGENTBUS_EXIT_ON_FAILURE, AGENTBUS_HOST_ID, AGENTBUS_UI_ACTIONS, LOG_LEVEL.
ui reads AGENTBUS_UI_PORT (9465), AGENTBUS_UI_HOST (127.0.0.1) and AGENTBUS_UI_ACTIONS.
LOG_LEVEL (default error) also sets what the other commands log to stderr (LOG_FORMAT=json: as JSON).
Every variable, with its default: README, Configuration.
Exit codes: 0 done, 1 failed, 2 bad arguments.`;

/** `agentbus help <command>`: its usage, what it does, its options. A family (`dlq`, `state`, `schedules`) shows all its commands. */
export function helpText(command: string): string {
  const names = command in FAMILIES ? FAMILIES[command].map((s) => `${command} ${s}`) : [command];
  return names
    .map((name) => {
      const c = COMMANDS[name];
      const opts = Object.entries(c.options).map(([o, what]) => {
        const spec = OPTIONS[o as OptionName];
        return `  ${`--${o}${'arg' in spec ? ` ${spec.arg}` : ''}`.padEnd(22)} ${what}`;
      });
      return [...c.synopsis.map((s) => `usage: agentbus ${s}`), '', wrap(c.about), ...(opts.length ? ['', 'options:', ...opts] : [])].join('\n');
    })
    .join('\n\n');
}

function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) lines.push(line), (line = w);
    else line = line ? `${line} ${w}` : w;
  }
  return [...lines, line].join('\n');
}
