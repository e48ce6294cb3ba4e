// The command line of `agentbus` read against the commands table (cli-commands.ts): the command and
// its values, and the checks that turn a mistyped command line into one line naming what is wrong
// (exit 2) before any store is opened. The commands themselves run in cli.ts.
import { parseArgs } from 'node:util';
import { replayFrom, toStoreBound } from '../bus/bounds.js';
import { int } from '../bus/validate.js';
import { suggest } from '../bus/suggest.js';
import type { StoreBound } from '../bus/driver.js';
import { MAX_STATE_LIST } from '../bus/keyed/states.js';
import { REPLY_PREFIX } from '../bus/event.js';
import { COMMANDS, FAMILIES, GLOBAL, OPTIONS, TOP, type OptionName } from './cli-commands.js';
import { parseDuration } from './schedules.js';

/** Bad arguments: the CLI prints `agentbus: <message>` and a pointer to the command's help, exit 2. */
export class UsageError extends Error {}

type Values = Record<string, string | boolean | undefined>;

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
  // An empty value (`--after ''`, `--group=`) would read as no option at all: a script's unset
  // variable would then list, rewind or cancel more than it meant to.
  const empty = Object.keys(strict.values).find((k) => strict.values[k] === '');
  if (empty !== undefined) throw new UsageError(`option --${empty} needs a value, not an empty one`);
  const rest = strict.positionals.slice(name.split(' ').length);
  const { min, max } = c.args;
  if (rest.length < min) throw new UsageError(`${name} needs ${c.args.name}`);
  if (rest.length > max) {
    const extra = rest.slice(max).map((a) => JSON.stringify(a)).join(' ');
    throw new UsageError(max === 0 ? `${name} takes no positional argument, got ${extra}` : `${name} takes ${c.args.name}, and not also ${extra}${name === 'publish' ? " (quote the JSON as one argument: '{\"a\": 1}')" : ''}`);
  }
  const values = strict.values as Values;
  checkValues(name, values, rest.length);
  return { kind: 'run', command: name.split(' ')[0], name, args: strict.positionals.slice(1), values };
}

/** The command the first words name (`dlq ls` for dlq, `state get` for state), or a UsageError with the nearest name. */
function commandOf(words: string[], help: boolean): string {
  const [top, sub] = words;
  if (!TOP.includes(top)) throw new UsageError(`unknown command ${JSON.stringify(top)}: ${suggest(top, TOP) ?? `expected ${TOP.join(', ')}`}`);
  const family = FAMILIES[top];
  if (family === undefined) return top;
  helpTopic = top;
  if (sub === undefined) {
    if (help) return top;
    throw new UsageError(`${top} needs a command: ${family.join(', ')}`);
  }
  if (!family.includes(sub)) throw new UsageError(`unknown ${top} command ${JSON.stringify(sub)}: ${suggest(sub, family) ?? `expected ${family.join(', ')}`}`);
  return `${top} ${sub}`;
}

function unknownOption(raw: string, command: string): string {
  const own = Object.keys(COMMANDS[command].options);
  const name = raw.replace(/^--?/, '').split('=')[0];
  const takes = own.length ? `${command} takes ${own.map((o) => `--${o}`).join(', ')}` : `${command} takes no options`;
  return `unknown option ${raw} for ${command}: ${suggest(name, own, '--') ?? takes}`;
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

/** A duration flag: milliseconds (`1500`) or a number and a unit (`250ms`, `30s`, `5m`, `2h`, `1d`, `1.5h`). */
export function durationMs(name: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === null) throw new UsageError(`invalid ${name} ${JSON.stringify(v)}: expected milliseconds or a duration such as 250ms, 30s, 5m, 2h, 1d`);
  return ms;
}

/** Values checked before any store is opened, each error naming the flag and what it accepts. */
function checkValues(name: string, o: Values, positionals: number): void {
  if (typeof o.limit === 'string') {
    // The bound the bus puts on the listing: dead letters (dead-letters.ts, deadLetters.list), keys and waits (bus.keys.list, bus.keys.waits).
    int('--limit', /^-?\d+$/.test(o.limit) ? Number(o.limit) : o.limit, 100, 1, name === 'state ls' || name === 'state waits' ? MAX_STATE_LIST : 100_000);
  }
  if (typeof o.type === 'string' && o.type.includes('*')) {
    // One topic a call: the stores list dead letters and pending events, and rewind, by exact type.
    const instead = name === 'rewind' ? `replay --group ${o.group ?? 'G'} --types ${JSON.stringify(o.type)} rewinds the group on each topic it matches` : `without --type it lists every type${name === 'dlq ls' ? ' (agentbus stats lists the topics and their dead letters)' : ''}`;
    throw new UsageError(`${name} --type takes one exact type, not a pattern (${JSON.stringify(o.type)}): ${instead}`);
  }
  if (typeof o.types === 'string' && o.types.split(',').every((t) => t.trim() === '')) {
    throw new UsageError(`--types ${JSON.stringify(o.types)} names no type: give types or patterns, comma-separated`);
  }
  if (name === 'rewind' || (name === 'replay' && o.group !== undefined)) {
    // Reply topics (bus.rewind refuses them too): refused before any of the types is rewound.
    const given = name === 'rewind' ? [o.type] : typeof o.types === 'string' ? o.types.split(',').map((t) => t.trim()) : [];
    const replies = given.filter((t): t is string => typeof t === 'string' && t.startsWith(REPLY_PREFIX));
    if (replies.length > 0) {
      throw new UsageError(`${name === 'rewind' ? 'rewind' : 'replay --group'} does not rewind reply topics (${replies.join(', ')}): their replies were handed to their requests once (a keyed group's recorded with its durable requests), and delivered again they are dropped; rewind the group on the types its handlers take`);
    }
  }
  if (name === 'state ls' && positionals === 0) {
    const paging = (['after', 'limit'] as const).filter((k) => o[k] !== undefined);
    if (paging.length) throw new UsageError(`state ls ${paging.map((k) => `--${k}`).join(' and ')} page through one agent's keys: name the agent (state ls <agent>); without it the keyed agents are listed whole`);
  }
  if (name === 'schedules rm') {
    if ((positionals > 0) === (o.name !== undefined)) throw new UsageError('schedules rm takes entry ids (schedules ls lists them) or --name N, one of the two');
    if (o.agent === undefined && o.key !== undefined) throw new UsageError('schedules rm --key goes with --agent (a keyed agent\'s reminder)');
  }
  if (name === 'publish') {
    if (o.delay !== undefined && o.at !== undefined) throw new UsageError('publish takes --delay or --at, not both');
    if (typeof o.delay === 'string') durationMs('--delay', o.delay);
  }
  if (name === 'replay') {
    if (o.agent !== undefined && o.group !== undefined) throw new UsageError('replay takes --agent NAME (hand events to an agent) or --group G (rewind a group), not both');
    if (o.group !== undefined) {
      const agentOnly = (['agents', 'to', 'publish'] as const).filter((k) => o[k] !== undefined);
      if (agentOnly.length) throw new UsageError(`replay --group takes no ${agentOnly.map((k) => `--${k}`).join(' or ')} (they go with --agent): a rewound group reads on from --from`);
    }
  }
  // --from earliest: the whole topic, for replay (as no --from) and rewind alike; replay --agent refuses --from latest.
  const from = o.from === undefined || o.from === 'earliest' ? undefined : name === 'replay' && o.group === undefined ? replayFrom(bound(o.from)) ?? undefined : toStoreBound('from', bound(o.from)!);
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
