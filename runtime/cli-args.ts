// The command line of `agentbus`: which commands exist, the options and arguments each takes, their
// help, and the checks that turn a mistyped command line into one line naming what is wrong (exit 2)
// before any store is opened. The commands themselves run in cli.ts.
import { parseArgs } from 'node:util';
import { toStoreBound } from '../bus/bounds.js';
import { int } from '../bus/validate.js';
import type { StoreBound } from '../bus/driver.js';

/** Bad arguments: the CLI prints `agentbus: <message>` and a pointer to the command's help, exit 2. */
export class UsageError extends Error {}

type Values = Record<string, string | boolean | undefined>;

/** Every option of every command: its kind and the placeholder of its value. */
const OPTIONS = {
  json: { type: 'boolean' },
  subject: { type: 'string', arg: 'S' },
  id: { type: 'string', arg: 'ID' },
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
  strategy: { type: 'string', arg: 'S' },
  'exit-on-failure': { type: 'boolean' },
  strict: { type: 'boolean' },
  publish: { type: 'boolean' },
} as const satisfies Record<string, { type: 'string' | 'boolean'; arg?: string }>;
type OptionName = keyof typeof OPTIONS;

/** Taken by every command: `agentbus <command> --help`, `agentbus --version`. */
const GLOBAL = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } } as const;

interface Command {
  /** Usage lines, without the leading `agentbus `. */
  synopsis: string[];
  /** What it does, for `agentbus help <command>`. */
  about: string;
  /** Its options, each with what it means for this command. */
  options: Partial<Record<OptionName, string>>;
  /** Positional arguments after the command words: the fewest, the most, and how the usage names them. */
  args: { min: number; max: number; name: string };
}

const BOUND = 'an ISO-8601 time, epoch milliseconds (12 digits or more) or a store position';
const STORE = 'The store comes from the environment (agentbus help).';

/** `dlq` is a family: its subcommands are commands of their own (`dlq ls`, ...). */
export const COMMANDS: Record<string, Command> = {
  start: {
    synopsis: ['start [--agents PATH] [--port N] [--http-host H] [--strategy S] [--exit-on-failure]'],
    about: 'Runs the host: the agents of a file, a folder or an installed module, supervised, with /healthz, /readyz, /metrics and /status over HTTP. SIGTERM or SIGINT drains the handlers in flight and exits 0. ' + STORE,
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
    synopsis: ['publish <type> <json> [--subject S] [--id ID]'],
    about: "Stores one event of <type> whose data is <json> (quote it: '{\"n\":1}'), and prints its id. " + STORE,
    options: { subject: 'the event subject (events of one subject keep their order under orderBy: subject)', id: 'the event id (default a new UUID); the same id again within the dedup window is stored once' },
    args: { min: 2, max: 2, name: '<type> <json>' },
  },
  replay: {
    synopsis: ['replay --agent NAME [--agents PATH] [--types T[,T]] [--from B] [--to B] [--publish] [--json]', 'replay --group G --types T[,T] [--from B] [--json]'],
    about: `With --agent: hands stored events to a fresh instance of the agent, moving no group and acknowledging nothing; without --types it replays the agent's subscriptions. Exit 1 when a replayed event failed. With --group: rewinds that running group on those types, so its consumers handle the events again. A bound B is ${BOUND}. ` + STORE,
    options: {
      agent: 'the agent to hand the events to',
      publish: "with --agent: store what the agent publishes (default: print it, store nothing; the agent sees ctx.replaying)",
      agents: 'where that agent is defined (AGENTBUS_AGENTS; default ./agents)',
      types: 'types and patterns (a.*), comma-separated; with --agent default its subscriptions',
      from: 'first event (default the oldest stored)',
      to: 'last event, with --agent (default the newest)',
      group: 'the consumer group to rewind',
      json: 'print the result as JSON',
    },
    args: { min: 0, max: 0, name: '' },
  },
  rewind: {
    synopsis: ['rewind --group G --type T [--from B]'],
    about: `Delivers a group's events of one type again, from B (${BOUND}; default the earliest). ` + STORE,
    options: { group: 'the consumer group', type: 'the type (one topic)', from: 'where to start again (default earliest)' },
    args: { min: 0, max: 0, name: '' },
  },
  stats: {
    synopsis: ['stats [--json]'],
    about: 'Prints each topic with its length, and each group reading it with its consumers, pending, lag and dead letters. Opens a SQLite file read-only and never creates it. ' + STORE,
    options: { json: 'print JSON' },
    args: { min: 0, max: 0, name: '' },
  },
  'dlq ls': {
    synopsis: ['dlq ls [--group G] [--type T] [--limit N] [--json]'],
    about: 'Lists dead letters, oldest first. Opens a SQLite file read-only. ' + STORE,
    options: { group: 'only this group', type: 'only this type', limit: 'at most N (1 to 100000; default 100)', json: 'print JSON' },
    args: { min: 0, max: 0, name: '' },
  },
  'dlq show': {
    synopsis: ['dlq show <id>'],
    about: 'Prints one dead letter (the event, the error, the attempts) as JSON; exit 1 when there is none with that id. ' + STORE,
    options: {},
    args: { min: 1, max: 1, name: '<id>' },
  },
  'dlq retry': {
    synopsis: ['dlq retry <id...>'],
    about: 'Hands dead letters back to the group that failed them, with fresh attempts; exit 1 when an id is not a dead letter. ' + STORE,
    options: {},
    args: { min: 1, max: Infinity, name: '<id...>' },
  },
  'dlq purge': {
    synopsis: ['dlq purge <id...>'],
    about: 'Removes dead letters for good; exit 1 when an id is not a dead letter. ' + STORE,
    options: {},
    args: { min: 1, max: Infinity, name: '<id...>' },
  },
  doctor: {
    synopsis: ['doctor [--json] [--strict]'],
    about: 'Checks the store: exit 0 healthy, 1 a check failed, 2 warnings only with --strict. ' + STORE,
    options: { json: 'print the findings as JSON', strict: 'a warning fails too (exit 2)' },
    args: { min: 0, max: 0, name: '' },
  },
};

const TOP = [...new Set(Object.keys(COMMANDS).map((c) => c.split(' ')[0]))];
const DLQ = Object.keys(COMMANDS).filter((c) => c.startsWith('dlq ')).map((c) => c.slice(4));

export const USAGE = `usage: agentbus <command> [options]

commands:
  start [--agents PATH] [--port N] [--http-host H] [--strategy S] [--exit-on-failure]
                                                   run the host: agents from a file, folder or module
  publish <type> <json> [--subject S] [--id ID]   store one event, print its id
  replay --agent NAME [--agents PATH] [--types T[,T]] [--from B] [--to B] [--publish] [--json]
                                                   hand stored events to an agent (no group moves);
                                                   --types defaults to the agent's subscriptions;
                                                   what it publishes is printed, stored only with --publish
  replay --group G --types T[,T] [--from B] [--json]
                                                   rewind group G on those types
  rewind --group G --type T [--from B]             deliver a group's events again from B (default earliest)
  stats [--json]                                   topics, length, groups, pending, lag, dead letters
  dlq ls [--group G] [--type T] [--limit N] [--json]
  dlq show <id>                                    one dead letter, as JSON
  dlq retry <id...>                                hand back to the group that failed them
  dlq purge <id...>                                remove for good
  doctor [--json] [--strict]                       check the store: exit 0 healthy, 1 a check failed,
                                                   2 warnings only with --strict
  help [<command>]                                 this text, or one command's options (also <command> --help)
  --version                                        print the version

A bound B is an ISO-8601 time, epoch milliseconds, or a store position. stats, dlq ls and dlq show
open a SQLite file read-only and never create it.
The store comes from the environment: AGENTBUS_ADAPTER (sqlite | redis), AGENTBUS_SQLITE_PATH
(./data/agentbus.db), REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB,
AGENTBUS_REDIS_CONNECT_TIMEOUT_MS, AGENTBUS_REDIS_LAYOUT (JSON, e.g. {"verification.*":"flat"}),
AGENTBUS_ALLOW_EVICTION; empty variables count as unset.
start also reads AGENTBUS_AGENTS (./agents), AGENTBUS_HTTP_PORT (9464), AGENTBUS_HTTP_HOST
(127.0.0.1), AGENTBUS_STRATEGY, AGENTBUS_EXIT_ON_FAILURE, AGENTBUS_HOST_ID, LOG_LEVEL.
LOG_LEVEL (default error) also sets what the other commands log to stderr.
Exit codes: 0 done, 1 failed, 2 bad arguments.`;

/** `agentbus help <command>`: its usage, what it does, its options. `dlq` shows the whole family. */
export function helpText(command: string): string {
  const names = command === 'dlq' ? DLQ.map((s) => `dlq ${s}`) : [command];
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

export type CommandLine =
  | { kind: 'version' }
  | { kind: 'help'; command?: string }
  /** No command at all: the usage, exit 2. */
  | { kind: 'usage' }
  /** `command` is the top word (`dlq`); `args` the positionals after it (for dlq: the subcommand, then ids). */
  | { kind: 'run'; command: string; name: string; args: string[]; values: Values };

/** The command named on the line, known as soon as it is read: a usage error then points at its help. */
export let helpTopic: string | undefined;

/**
 * Reads the command line. Options may come before or after the command words. A value that starts
 * with a dash and a digit is taken as the value of a string option (`--limit -5`), so its check can
 * name it, rather than parseArgs' "argument is ambiguous".
 */
export function parseCommandLine(argv: string[]): CommandLine {
  const args = joinNegativeValues(argv);
  const all = { ...OPTIONS, ...GLOBAL } as Record<string, { type: 'string' | 'boolean'; short?: string }>;
  const loose = parseArgs({ args, options: all, strict: false, allowPositionals: true, tokens: true });
  if (loose.values.version === true) return { kind: 'version' };
  const words = loose.positionals;
  if (words[0] === 'help') {
    if (words.length === 1) return { kind: 'help' };
    return { kind: 'help', command: commandOf(words.slice(1), true) };
  }
  if (words.length === 0) {
    const stray = loose.tokens.find((t) => t.kind === 'option' && t.name !== 'help');
    if (stray?.kind === 'option') throw new UsageError(`${stray.rawName} before any command: options go after the command (agentbus <command> [options])`);
    return loose.values.help === true ? { kind: 'help' } : { kind: 'usage' };
  }
  const name = commandOf(words, loose.values.help === true);
  helpTopic = name;
  if (loose.values.help === true) return { kind: 'help', command: name };
  const c = COMMANDS[name];
  for (const t of loose.tokens) {
    if (t.kind !== 'option' || t.name in GLOBAL || t.name in c.options) continue;
    throw new UsageError(unknownOption(t.rawName, name));
  }
  let strict: ReturnType<typeof parseArgs>;
  try {
    const options = Object.fromEntries(Object.keys(c.options).map((o) => [o, OPTIONS[o as OptionName]]));
    strict = parseArgs({ args, options: { ...options, ...GLOBAL }, strict: true, allowPositionals: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (!e.code?.startsWith('ERR_PARSE_ARGS')) throw err;
    const missing = /^Option '(-\S+)(?: <value>)?' argument missing/.exec(e.message);
    throw new UsageError(missing ? `option ${missing[1]} needs a value` : e.message.split('\n')[0]);
  }
  const rest = strict.positionals.slice(name.split(' ').length);
  const { min, max } = c.args;
  if (rest.length < min) throw new UsageError(`${name} needs ${c.args.name}`);
  if (rest.length > max) {
    const extra = rest.slice(max).map((a) => JSON.stringify(a)).join(' ');
    throw new UsageError(max === 0 ? `${name} takes no positional argument, got ${extra}` : `${name} takes ${c.args.name}, and not also ${extra}${name === 'publish' ? " (quote the JSON as one argument: '{\"a\": 1}')" : ''}`);
  }
  const values = strict.values as Values;
  checkValues(name, values);
  return { kind: 'run', command: name.split(' ')[0], name, args: strict.positionals.slice(1), values };
}

/** The command the first words name (`dlq ls` for dlq), or a UsageError with the nearest name. */
function commandOf(words: string[], help: boolean): string {
  const [top, sub] = words;
  if (!TOP.includes(top)) throw new UsageError(`unknown command ${JSON.stringify(top)}: ${suggest(top, TOP) ?? `expected ${TOP.join(', ')}`}`);
  if (top !== 'dlq') return top;
  helpTopic = 'dlq';
  if (sub === undefined) {
    if (help) return 'dlq';
    throw new UsageError(`dlq needs a command: ${DLQ.join(', ')}`);
  }
  if (!DLQ.includes(sub)) throw new UsageError(`unknown dlq command ${JSON.stringify(sub)}: ${suggest(sub, DLQ) ?? `expected ${DLQ.join(', ')}`}`);
  return `dlq ${sub}`;
}

function unknownOption(raw: string, command: string): string {
  const own = Object.keys(COMMANDS[command].options);
  const name = raw.replace(/^--?/, '').split('=')[0];
  const takes = own.length ? `${command} takes ${own.map((o) => `--${o}`).join(', ')}` : `${command} takes no options`;
  return `unknown option ${raw} for ${command}: ${suggest(name, own, '--') ?? takes}`;
}

/** `did you mean X?` when a candidate is close: within 1 edit for words up to 4 letters, else 2, or a prefix. */
export function suggest(word: string, candidates: string[], prefix = ''): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : distance(word.toLowerCase(), c);
    if (d < bestD) (best = c), (bestD = d);
  }
  const limit = word.length <= 4 ? 1 : 2;
  return best !== undefined && bestD <= limit ? `did you mean ${prefix}${best}?` : undefined;
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** `--limit -5` -> `--limit=-5`: a negative number is the option's value, checked like any other. */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    const spec = name === undefined ? undefined : (OPTIONS as Record<string, { type: string }>)[name];
    if (spec?.type === 'string' && /^-\d/.test(argv[i + 1] ?? '')) out.push(`${a}=${argv[++i]}`);
    else out.push(a);
  }
  return out;
}

/** Boundaries as the bus takes them: digits alone are epoch ms unless they look like a position. */
export function bound(v: string | boolean | undefined): string | number | undefined {
  if (typeof v !== 'string') return undefined;
  return /^\d{12,}$/.test(v) ? Number(v) : v;
}

/** Values checked before any store is opened, each error naming the flag and what it accepts. */
function checkValues(name: string, o: Values): void {
  if (typeof o.limit === 'string') {
    // The bound the bus puts on a dead-letter listing (dead-letters.ts, deadLetters.list).
    int('--limit', /^-?\d+$/.test(o.limit) ? Number(o.limit) : o.limit, 100, 1, 100_000);
  }
  if (name === 'replay') {
    if (o.agent !== undefined && o.group !== undefined) throw new UsageError('replay takes --agent NAME (hand events to an agent) or --group G (rewind a group), not both');
    if (o.group !== undefined) {
      const agentOnly = (['agents', 'to', 'publish'] as const).filter((k) => o[k] !== undefined);
      if (agentOnly.length) throw new UsageError(`replay --group takes no ${agentOnly.map((k) => `--${k}`).join(' or ')} (they go with --agent): a rewound group reads on from --from`);
    }
  }
  const from = o.from === undefined ? undefined : toStoreBound('from', bound(o.from)!);
  const to = o.to === undefined ? undefined : toStoreBound('to', bound(o.to)!);
  if (from && to && after(from, to)) throw new UsageError(`--from ${o.from} is after --to ${o.to}: nothing lies between them`);
}

/** Whether bound a lies after b; only bounds of one kind (two times, two positions of one form) compare. */
function after(a: StoreBound, b: StoreBound): boolean {
  if ('time' in a && 'time' in b) return a.time > b.time;
  if (!('position' in a) || !('position' in b)) return false;
  const pa = a.position.split('-').map(BigInt);
  const pb = b.position.split('-').map(BigInt);
  if (pa.length !== pb.length) return false;
  return pa[0] > pb[0] || (pa[0] === pb[0] && pa.length === 2 && pa[1] > pb[1]);
}
