import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import Database from 'better-sqlite3';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { waitFor } from './helpers/index.js';
import { startHost, workLog } from './helpers/host.js';
import { parseCommandLine } from '../runtime/cli-args.js';
import { COMMANDS, helpText, OPTIONS, USAGE } from '../runtime/cli-commands.js';
import { AgentbusError } from '../bus/errors.js';
import type { KeyedDeliveryContext } from '../bus/keyed/contract.js';

const path = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'bus.db');
const cli = (...args: string[]) => cliWith({}, ...args);
const cliWith = (env: Record<string, string>, ...args: string[]) => {
  const r = spawnSync(process.execPath, ['dist/runtime/cli.js', ...args], { encoding: 'utf8', env: { ...process.env, AGENTBUS_SQLITE_PATH: path, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
/** Runs the CLI once per argument list, all at once (each start costs a Node process), results in order. */
const clis = (env: Record<string, string>, lists: string[][]) =>
  Promise.all(
    lists.map(
      (args) =>
        new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const child = spawn(process.execPath, ['dist/runtime/cli.js', ...args], { env: { ...process.env, AGENTBUS_SQLITE_PATH: path, ...env } });
          let out = '';
          let err = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (err += d));
          child.on('close', (code) => resolve({ code, out, err }));
        }),
    ),
  );

test('publish stores an event and stats shows it', () => {
  const p = cli('publish', 'cli.test', '{"n":1}', '--subject', 's1');
  assert.is(p.code, 0, p.err);
  assert.ok(/^[0-9a-f-]{36}$/.test(p.out.trim()));
  const s = cli('stats', '--json');
  assert.is(s.code, 0, s.err);
  assert.equal(JSON.parse(s.out).find((t: { type: string }) => t.type === 'cli.test').length, 1);
  assert.ok(cli('stats').out.includes('cli.test'));
});

test('publish --delay / --at: stored as due (stats shows it), delivered by a running bus when due and not before; bad values refused with exit 2', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const got: Array<[unknown, number]> = [];
  const sub = await bus.subscribe({ group: 'cli-delay', types: ['cli.later'] }, (e) => void got.push([(e.data as { n: number }).n, Date.now()]));
  const t0 = Date.now();
  const [later, at] = await clis({}, [
    ['publish', 'cli.later', '{"n":1}', '--delay', '1.5s'],
    ['publish', 'cli.later', '{"n":2}', '--at', new Date(t0 + 1200).toISOString()],
  ]);
  assert.equal([later.code, at.code], [0, 0], later.err + at.err);
  const s = cli('stats', '--json');
  const stats = JSON.parse(s.out).find((t: { type: string }) => t.type === 'cli.later');
  if (got.length === 0) assert.is(stats.due, 2, s.out);
  await waitFor('both delivered', () => got.length === 2, 10_000);
  const when = new Map(got);
  assert.ok(when.get(1)! - t0 >= 1500 && when.get(2)! - t0 >= 1200, JSON.stringify(got.map(([d, t]) => [d, t - t0])));
  await sub.close();
  await bus.close();
  const bad = await clis({}, [
    ['publish', 'cli.later', '{}', '--delay', '5x'],
    ['publish', 'cli.later', '{}', '--delay', '1s', '--at', '2030-01-01T00:00:00Z'],
    ['publish', 'cli.later', '{}', '--at', 'soon'],
  ]);
  assert.equal(bad[0].err, 'agentbus: invalid --delay "5x": expected milliseconds or a duration such as 250ms, 30s, 5m, 2h, 1d (see agentbus help publish)\n');
  assert.equal(bad[1].err, 'agentbus: publish takes --delay or --at, not both (see agentbus help publish)\n');
  assert.equal([bad[0].code, bad[1].code], [2, 2]);
  assert.match(bad[2].err, /INVALID_OPTION: invalid at "soon"/);
});

test('bad arguments: one line naming what is wrong and where the help is, exit 2', async () => {
  const lists = [['frob'], ['publish', 'x'], ['publish', 'x', '{bad'], ['publish', 'bad type', '{}'], ['dlq', 'zap'], ['stats', '--nope']];
  for (const [i, r] of (await clis({}, lists)).entries()) {
    const args = lists[i];
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.ok(r.err.startsWith('agentbus: '), r.err);
    assert.is(r.err.trimEnd().split('\n').length, 1, r.err);
    assert.is(r.out, '');
    if (i === 0) assert.is(r.err, 'agentbus: unknown command "frob": expected start, publish, replay, rewind, stats, dlq, state, schedules, ui, doctor (see agentbus help)\n');
    if (i === 1) assert.is(r.err, 'agentbus: publish needs <type> <json> (see agentbus help publish)\n');
  }
});

test('help: agentbus help <command> and <command> --help print its usage and options, exit 0; the usage names --version', async () => {
  for (const r of await clis({}, [['help', 'publish'], ['publish', '--help'], ['publish', '-h']])) {
    assert.is(r.code, 0, r.err);
    assert.ok(r.out.startsWith('usage: agentbus publish <type> <json> [--subject S] [--id ID] [--delay D | --at TIME]\n'), r.out);
    assert.match(r.out, /--delay D +deliver it this long from now/);
    assert.match(r.out, /--subject S +the event subject/);
    assert.match(r.out, /--id ID +the event id/);
  }
  const [dlq, dlqLs, typo, usage, version, none] = await clis({}, [['help', 'dlq'], ['dlq', 'ls', '--help'], ['help', 'pubish'], ['--help'], ['--version'], []]);
  assert.is(dlq.code, 0);
  for (const sub of ['ls', 'show', 'retry', 'purge']) assert.match(dlq.out, new RegExp(`usage: agentbus dlq ${sub}`));
  assert.ok(dlqLs.out.startsWith('usage: agentbus dlq ls [--group G]'));
  assert.equal([typo.code, typo.err], [2, 'agentbus: unknown command "pubish": did you mean publish? (see agentbus help)\n']);
  assert.is(usage.code, 0);
  assert.match(usage.out, /^ {2}--version, -v +print the version$/m);
  assert.match(usage.out, /^ {2}help \[<command>\], --help, -h +this text/m);
  assert.equal([version.code, version.out.trim()], [0, JSON.parse(readFileSync('package.json', 'utf8')).version]);
  // What the help said wrong or left out: -v, rewind --json, the DUE column, which commands refuse a
  // missing SQLite file, schedules rm by ids naming each id (it counts them), a misaligned ui line.
  const [short, rewind, stats] = await clis({}, [['-v'], ['rewind', '--help'], ['help', 'stats']]);
  assert.equal([short.code, short.out], [0, version.out]);
  assert.match(rewind.out, /^ {2}--json +print \{ group, type, from \} as JSON$/m);
  assert.match(stats.out, /DUE/);
  assert.match(usage.out, /dlq retry, dlq purge, state rm, schedules rm, rewind, replay and\nui --allow-actions refuse a missing file too: only start and publish create the database/);
  assert.not.match(helpText('schedules rm'), /it is named/);
  const described = usage.out.split('\n').filter((l) => /^ {2}\S.* {2,}\S/.test(l));
  for (const l of described) assert.is(l.search(/(?<= {2,})\S[^ ]*( \S+)*$/), 51, `misaligned: ${l}`);
  assert.equal([none.code, none.out], [2, '']);
  assert.ok(none.err.startsWith('usage: agentbus <command>'), 'no command: the usage on stderr');
});

test('the usage, each command\'s help and the README name the same commands and options the parser takes', () => {
  // What `agentbus --help` and `agentbus help <command>` print (the test above runs them).
  const usage = USAGE;
  const readme = readFileSync('README.md', 'utf8');
  for (const [name, c] of Object.entries(COMMANDS)) {
    const help = helpText(name);
    for (const s of c.synopsis) {
      assert.ok(usage.includes(`  ${s}`), `usage lacks ${s}`);
      assert.ok(help.includes(`usage: agentbus ${s}`), `help ${name} lacks ${s}`);
      assert.ok(readme.includes(`agentbus ${s}\n`), `README lacks agentbus ${s}`);
      for (const o of s.match(/--[a-z-]+/g) ?? []) assert.ok(o.slice(2) in c.options, `${name}: the usage names ${o}, which it does not take`);
    }
    for (const o of Object.keys(c.options)) {
      assert.match(help, new RegExp(`^ {2}--${o}\\b`, 'm'), `help ${name} does not explain --${o}`);
      assert.ok(c.synopsis.some((s) => s.includes(`--${o}`)), `${name} takes --${o} but its usage does not say so`);
    }
  }
  // replay --agent without --types: the agent's subscriptions, as the usage says.
  assert.match(usage, /replay --agent NAME \[--agents PATH\] \[--types T\[,T\]\]/);
});

/** What the CLI prints after `agentbus: ` for a bad command line, parsed in this process (no Node start per case). */
const refusal = (args: string[]): string => {
  try {
    parseCommandLine(args);
  } catch (err) {
    return err instanceof AgentbusError ? `${err.code}: ${err.message}` : (err as Error).message;
  }
  return '(accepted)';
};

/** Each case is checked in this process; the spawned ones also end to end: stderr the one line, exit 2. */
async function refused(cases: [string[], string, 'spawn'?][], env: Record<string, string> = {}): Promise<void> {
  for (const [args, line] of cases) assert.is(`agentbus: ${refusal(args)}`, line.replace(/ \(see agentbus help[^)]*\)$/, ''), args.join(' '));
  const spawned = cases.filter((c) => c[2] === 'spawn');
  const results = await clis(env, spawned.map(([args]) => args));
  for (const [i, [args, line]] of spawned.entries()) assert.equal([results[i].code, results[i].err, results[i].out], [2, `${line}\n`, ''], args.join(' '));
}

test('an unknown option: one line with the nearest option, exit 2', async () => {
  await refused([
    [['stats', '--jsn'], 'agentbus: unknown option --jsn for stats: did you mean --json? (see agentbus help stats)', 'spawn'],
    [['rewind', '--grop', 'g'], 'agentbus: unknown option --grop for rewind: did you mean --group? (see agentbus help rewind)'],
    [['dlq', 'ls', '--lmit', '5'], 'agentbus: unknown option --lmit for dlq ls: did you mean --limit? (see agentbus help dlq)', 'spawn'],
    [['publish', 'a.b', '{}', '--subjcet', 's'], 'agentbus: unknown option --subjcet for publish: did you mean --subject? (see agentbus help publish)'],
    [['stats', '--group', 'g'], 'agentbus: unknown option --group for stats: stats takes --json (see agentbus help stats)'],
    [['dlq', 'show', '1', '--json'], 'agentbus: unknown option --json for dlq show: dlq show takes no options (see agentbus help dlq)'],
    [['pubish', 'a.b', '{}'], 'agentbus: unknown command "pubish": did you mean publish? (see agentbus help)', 'spawn'],
    [['dlq', 'lss'], 'agentbus: unknown dlq command "lss": did you mean ls? (see agentbus help dlq)'],
    [['dlq', 'ls', '--limit'], 'agentbus: option --limit needs a value (see agentbus help dlq)'],
    [['--json', 'stats', '--jsno'], 'agentbus: unknown option --jsno for stats: did you mean --json? (see agentbus help stats)'],
  ]);
});

test('dlq without a subcommand, a bad --limit, extra arguments, --from after --to: one line, exit 2, before any store is opened', async () => {
  const missing = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'none.db');
  await refused(
    [
      [['dlq'], 'agentbus: dlq needs a command: ls, show, retry, purge (see agentbus help dlq)', 'spawn'],
      [['dlq', 'ls', '--limit', 'abc'], 'agentbus: INVALID_OPTION: invalid --limit "abc": expected an integer from 1 to 100000', 'spawn'],
      [['dlq', 'ls', '--limit', '-5'], 'agentbus: INVALID_OPTION: invalid --limit -5: expected an integer from 1 to 100000', 'spawn'],
      [['dlq', 'ls', '--limit', '0'], 'agentbus: INVALID_OPTION: invalid --limit 0: expected an integer from 1 to 100000'],
      [['stats', 'extra'], 'agentbus: stats takes no positional argument, got "extra" (see agentbus help stats)', 'spawn'],
      [['dlq', 'show', '1', '2'], 'agentbus: dlq show takes <id>, and not also "2" (see agentbus help dlq)'],
      [['publish', 'a.b', '{"a":', '1}'], 'agentbus: publish takes <type> <json>, and not also "1}" (quote the JSON as one argument: \'{"a": 1}\') (see agentbus help publish)'],
      [['rewind', '--group', 'g', '--type', 'a.b', 'now'], 'agentbus: rewind takes no positional argument, got "now" (see agentbus help rewind)'],
      [['replay', '--agent', 'A', '--from', 'latest'], `agentbus: INVALID_OPTION: invalid replay from "latest": a replay hands over stored events and none lies after the latest; give 'earliest' (or no from) for the oldest stored event, or subscribe with from: 'latest' for new ones`, 'spawn'],
      [['replay', '--agent', 'A', '--from', '2026-01-02T00:00:00Z', '--to', '2026-01-01T00:00:00Z'], 'agentbus: --from 2026-01-02T00:00:00Z is after --to 2026-01-01T00:00:00Z: nothing lies between them (see agentbus help replay)', 'spawn'],
      [['replay', '--agent', 'A', '--from', '20', '--to', '10'], 'agentbus: --from 20 is after --to 10: nothing lies between them (see agentbus help replay)'],
      [['replay', '--agent', 'A', '--from', '1700000000001', '--to', '1700000000000'], 'agentbus: --from 1700000000001 is after --to 1700000000000: nothing lies between them (see agentbus help replay)'],
      [['replay', '--agent', 'A', '--from', '1-5', '--to', '1-4'], 'agentbus: --from 1-5 is after --to 1-4: nothing lies between them (see agentbus help replay)'],
      [['replay', '--agent', 'A', '--from', 'soon'], 'agentbus: INVALID_OPTION: invalid from "soon": expected a Date, epoch milliseconds, an ISO-8601 time or a position'],
      [['replay', '--group', 'g', '--types', 'a.b', '--to', '5'], 'agentbus: replay --group takes no --to (they go with --agent): a rewound group reads on from --from (see agentbus help replay)'],
      [['replay', '--group', 'g', '--agent', 'A'], 'agentbus: replay takes --agent NAME (hand events to an agent) or --group G (rewind a group), not both (see agentbus help replay)'],
    ],
    { AGENTBUS_SQLITE_PATH: missing },
  );
  assert.not.ok(existsSync(missing), 'a refused command opened the store');
  // Bounds in order, or of kinds that do not compare (a position and a time), are accepted.
  for (const [from, to] of [['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'], ['10', '20'], ['1-4', '1-5'], ['5', '2026-01-01T00:00:00Z']]) {
    assert.is(refusal(['replay', '--agent', 'A', '--from', from, '--to', to]), '(accepted)', `${from} ${to}`);
  }
});

test('a pattern where one exact type is taken (dlq ls, schedules ls, rewind --type): refused naming the option and what takes patterns, exit 2', async () => {
  const missing = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'none.db');
  await refused(
    [
      [['dlq', 'ls', '--type', 'bill.*'], 'agentbus: dlq ls --type takes one exact type, not a pattern ("bill.*"): without --type it lists every type (agentbus stats lists the topics and their dead letters) (see agentbus help dlq)', 'spawn'],
      [['schedules', 'ls', '--type', '*'], 'agentbus: schedules ls --type takes one exact type, not a pattern ("*"): without --type it lists every type (see agentbus help schedules)', 'spawn'],
      [['rewind', '--group', 'g', '--type', 'bill.*'], 'agentbus: rewind --type takes one exact type, not a pattern ("bill.*"): replay --group g --types "bill.*" rewinds the group on each topic it matches (see agentbus help rewind)', 'spawn'],
    ],
    { AGENTBUS_SQLITE_PATH: missing },
  );
  assert.not.ok(existsSync(missing), 'a refused command opened the store');
  // Other bad types keep the type error.
  assert.match(refusal(['dlq', 'ls', '--type', 'a b']), /^(\(accepted\)|INVALID_TYPE)/);
});

test('rewind and replay --group refuse reply topics, naming them, before any type is rewound (exit 2)', async () => {
  const why = ': their replies were handed to their requests once (a keyed group\'s recorded with its durable requests), and delivered again they are dropped; rewind the group on the types its handlers take';
  await refused([
    [['rewind', '--group', 'g', '--type', 'agentbus.reply.keyed.g'], `agentbus: rewind does not rewind reply topics (agentbus.reply.keyed.g)${why} (see agentbus help rewind)`, 'spawn'],
    [['replay', '--group', 'g', '--types', 'a.b,agentbus.reply.keyed.g, agentbus.reply.*'], `agentbus: replay --group does not rewind reply topics (agentbus.reply.keyed.g, agentbus.reply.*)${why} (see agentbus help replay)`, 'spawn'],
  ]);
  assert.is(refusal(['replay', '--group', 'g', '--types', 'a.b,a.*']), '(accepted)');
  assert.is(refusal(['replay', '--agent', 'A', '--types', 'agentbus.reply.keyed.g']), '(accepted)', 'replay --agent moves no group');
});

test('an empty value of any option that takes one is refused naming the option (it was read as no option), exit 2', async () => {
  const missing = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'none.db');
  await refused(
    [
      [['state', 'ls', 'A', '--after', ''], 'agentbus: option --after needs a value, not an empty one (see agentbus help state)', 'spawn'],
      [['dlq', 'ls', '--group='], 'agentbus: option --group needs a value, not an empty one (see agentbus help dlq)', 'spawn'],
      [['start', '--agents', ''], 'agentbus: option --agents needs a value, not an empty one (see agentbus help start)', 'spawn'],
      [['ui', '--port', ''], 'agentbus: option --port needs a value, not an empty one (see agentbus help ui)'],
      [['replay', '--group', 'g', '--types', ' , '], 'agentbus: --types " , " names no type: give types or patterns, comma-separated (see agentbus help replay)', 'spawn'],
    ],
    { AGENTBUS_SQLITE_PATH: missing },
  );
  assert.not.ok(existsSync(missing), 'a refused command opened the store');
  // Every option of every command that takes a value.
  for (const [name, c] of Object.entries(COMMANDS)) {
    const positionals = Array.from({ length: c.args.min }, (_, i) => `p${i}`);
    for (const o of Object.keys(c.options)) {
      if (OPTIONS[o as keyof typeof OPTIONS].type !== 'string') continue;
      const args = [...name.split(' '), ...positionals, `--${o}`, ''];
      assert.is(refusal(args), `option --${o} needs a value, not an empty one`, args.join(' '));
    }
  }
});

test('schedules ls lists pending delayed events (named reminders too); schedules rm cancels by entry id or by name; what is not pending exits 1; bad arguments exit 2', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const reminder = JSON.stringify(['CliTasks', 'deadline', 'task-7']);
  await bus.publish('cli.remind', { n: 1 }, { delay: 3_600_000, name: reminder, subject: 'task-7' });
  await bus.publish('cli.remind', { n: 2 }, { delay: 3_600_001 });
  await bus.publish('cli.remind.other', { n: 3 }, { delay: 3_600_002, name: 'plain' });
  await bus.close();
  const ls = cli('schedules', 'ls', '--type', 'cli.remind', '--json');
  assert.is(ls.code, 0, ls.err);
  const listed = JSON.parse(ls.out) as Array<{ id: string; type: string; name: string | null; event: { data: { n: number }; subject?: string } }>;
  assert.equal(listed.map((e) => [e.type, e.name, e.event.data.n, e.event.subject]), [['cli.remind', reminder, 1, 'task-7'], ['cli.remind', null, 2, undefined]]);
  const text = cli('schedules', 'ls');
  assert.match(text.out, /^ID\s+TYPE\s+DUE AT\s+NAME\s+SUBJECT\s+EVENT\n/);
  assert.ok(text.out.includes('cli.remind.other'), text.out);
  const byName = cli('schedules', 'rm', '--name', 'deadline', '--agent', 'CliTasks', '--key', 'task-7');
  assert.equal([byName.code, byName.out], [0, 'cancelled 1 of 1\n'], byName.err);
  const again = cli('schedules', 'rm', '--name', 'deadline', '--agent', 'CliTasks', '--key', 'task-7');
  assert.equal([again.code, again.out], [1, 'cancelled 0 of 1\n']);
  assert.ok(again.err.includes('nothing pending under the name'), again.err);
  assert.equal(cli('schedules', 'rm', '--name', 'plain').code, 0);
  const byId = cli('schedules', 'rm', listed[1].id, '999999999');
  assert.equal([byId.code, byId.out], [1, 'removed 1 of 2\n'], byId.err);
  assert.equal(JSON.parse(cli('schedules', 'ls', '--type', 'cli.remind', '--json').out), []);
  const [none, both, key] = await clis({}, [['schedules', 'rm'], ['schedules', 'rm', '1', '--name', 'x'], ['schedules', 'rm', '--name', 'x', '--key', 'k']]);
  assert.equal([none.code, both.code, key.code], [2, 2, 2]);
  assert.ok(none.err.includes('schedules rm takes entry ids (schedules ls lists them) or --name N, one of the two'), none.err);
  assert.ok(key.err.includes('--key goes with --agent'), key.err);
});

/** The line naming ids that are no dead letter (dlq show, retry, purge). */
const gone = (...ids: string[]) => `agentbus: no dead letter ${ids.map((i) => JSON.stringify(i)).join(', ')}: retried, purged or never there; a retried event that failed again is a new dead letter with a new id (agentbus dlq ls lists them)\n`;

test('dlq retry and purge of an unknown id name it on one line and exit 1; known ids are still done, an id named twice once', async () => {
  const unknown = cli('dlq', 'retry', '424242');
  assert.equal([unknown.code, unknown.err, unknown.out], [1, gone('424242'), 'retried 0 of 1\n']);
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const sub = await bus.subscribe({ group: 'cli-unknown', types: ['cli.unknown'], maxAttempts: 1 }, () => {
    throw new Error('no');
  });
  await bus.publish('cli.unknown', {});
  await waitFor('dead letter', async () => (await bus.deadLetters.list({ group: 'cli-unknown' })).length === 1);
  await sub.close();
  const [dl] = await bus.deadLetters.list({ group: 'cli-unknown' });
  await bus.close();
  // Named twice: purged and counted once (it was "purged 1 of 2", exit 1, with no id named).
  const twice = cli('dlq', 'purge', dl.id, dl.id, '--json');
  assert.equal([twice.code, twice.err], [0, ''], twice.out);
  assert.equal(JSON.parse(twice.out), { done: 1, missing: [], items: [{ id: dl.id, group: 'cli-unknown', type: 'cli.unknown', eventId: dl.event!.id }], of: 1 });
  const r = cli('dlq', 'purge', dl.id, '424243');
  assert.equal([r.code, r.err, r.out], [1, gone(dl.id, '424243'), 'purged 0 of 2\n']);
  const show = cli('dlq', 'show', dl.id);
  assert.equal([show.code, show.err], [1, gone(dl.id)], 'purged');
});

test('state get, ls and rm reach a keyed group\'s state made by a real consumer; rm erases it from the store; unknown keys exit 1', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const sub = await bus.subscribe({ group: 'CliCounter', types: ['cli.count'], key: 'subject', initialState: () => ({ n: 0 }) }, (_e, ctx) => {
    (ctx as KeyedDeliveryContext<{ n: number }>).state.n++;
  });
  await bus.publishBatch(['k1', 'k2', 'k2', 'k3', 'k3', 'k3'].map((subject) => ({ type: 'cli.count', data: {}, subject })));
  const count = async (k: string) => ((await bus.keys!.get('CliCounter', k))?.state as { n: number } | undefined)?.n;
  await waitFor('three keys counted', async () => (await count('k1')) === 1 && (await count('k2')) === 2 && (await count('k3')) === 3);
  await sub.close();
  await bus.close();
  const got = cli('state', 'get', 'CliCounter', 'k2');
  assert.is(got.code, 0, got.err);
  const k2 = JSON.parse(got.out);
  assert.equal([k2.key, k2.state], ['k2', { n: 2 }]);
  assert.ok(k2.version >= 1 && !Number.isNaN(Date.parse(k2.updatedAt)), got.out);
  const none = cli('state', 'get', 'CliCounter', 'k9');
  assert.equal([none.code, none.err, none.out], [1, 'agentbus: no state for key "k9" of agent CliCounter (agentbus state ls CliCounter lists its keys)\n', '']);
  const groups = cli('state', 'ls', '--json');
  assert.is(groups.code, 0, groups.err);
  assert.ok(JSON.parse(groups.out).includes('CliCounter'), groups.out);
  assert.match(cli('state', 'ls').out, /^AGENT\n(.*\n)*CliCounter\n/);
  const keys = JSON.parse(cli('state', 'ls', 'CliCounter', '--json').out);
  assert.equal(keys.map((k: { key: string }) => k.key), ['k1', 'k2', 'k3']);
  assert.is(keys[1].bytes, JSON.stringify({ n: 2 }).length);
  const page = cli('state', 'ls', 'CliCounter', '--after', 'k1', '--limit', '1');
  assert.is(page.code, 0, page.err);
  assert.match(page.out, /^KEY +VERSION +BYTES +UPDATED AT\nk2 +\d+ +7 +\d{4}-/);
  assert.ok(page.out.endsWith('(1 shown; the next page: agentbus state ls CliCounter --after "k2")\n'), page.out);
  const rm = cli('state', 'rm', 'CliCounter', 'k1', 'k3', 'k9', 'k3');
  assert.equal([rm.code, rm.err, rm.out], [1, 'agentbus: nothing stored for key "k9" of agent CliCounter (agentbus state ls CliCounter lists its keys)\n', 'erased 2 of 3\n']);
  assert.equal(JSON.parse(cli('state', 'ls', 'CliCounter', '--json').out).map((k: { key: string }) => k.key), ['k2']);
  const check = await createSqliteBus({ path, readonly: true, logger: pino({ level: 'silent' }) });
  assert.is(await check.keys!.get('CliCounter', 'k1'), null, 'k1 erased from the store');
  await check.close();
  const json = cli('state', 'rm', 'CliCounter', 'k2', 'k8', '--json');
  assert.equal([json.code, JSON.parse(json.out)], [1, { erased: ['k2'], missing: ['k8'], of: 2 }], json.err);
});

test('state rm erases a key\'s step and wait records too (a key with records only: erased 1 of 1); dlq retry --fresh and dlq purge remove the dead letter\'s records', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const parked: string[] = [];
  const sub = await bus.subscribe({ group: 'CliEraser', types: ['cli.erase'], waitsFor: ['cli.erased'], key: 'subject', maxAttempts: 1, drainTimeoutMs: 200 }, async (_e, c) => {
    const ctx = c as KeyedDeliveryContext<unknown>;
    await ctx.step('summary', () => `summary of ${ctx.key}`);
    if (ctx.key.startsWith('dl')) throw new Error('dead-lettered after its step');
    parked.push(ctx.key);
    await ctx.waitFor('cli.erased', { timeout: '1d' });
  });
  const records = (key?: string) => {
    const db = new Database(path, { readonly: true });
    const { n } = db.prepare("SELECT COUNT(*) AS n FROM agent_wait WHERE grp = 'CliEraser' AND (? IS NULL OR key = ?)").get(key ?? null, key ?? null) as { n: number };
    db.close();
    return n;
  };
  try {
    for (const k of ['t1', 'dl1', 'dl2']) await bus.publish('cli.erase', {}, { subject: k });
    await waitFor('parked', () => parked.length === 1);
    await waitFor('dead-lettered', async () => (await bus.deadLetters.list({ group: 'CliEraser' })).length === 2);
    assert.equal([records('t1'), records('dl1'), records('dl2')], [2, 1, 1], 't1: its step and its wait; dl1, dl2: their steps');
    const rm = cli('state', 'rm', 'CliEraser', 't1', 't9');
    assert.equal([rm.code, rm.err, rm.out], [1, 'agentbus: nothing stored for key "t9" of agent CliEraser (agentbus state ls CliEraser lists its keys)\n', 'erased 1 of 2\n']);
    assert.is(records('t1'), 0, 'the step and the wait record of t1 are gone');
    const dls = await bus.deadLetters.list({ group: 'CliEraser' });
    const id = (k: string) => dls.find((d) => d.event?.subject === k)!.id;
    const purge = cli('dlq', 'purge', id('dl1'));
    assert.equal([purge.code, purge.out], [0, `purged ${id('dl1')}: event ${dls.find((d) => d.id === id('dl1'))!.event!.id} of cli.erase, group CliEraser\npurged 1 of 1\n`], purge.err);
    assert.is(records('dl1'), 0, 'purged with its dead letter');
    await sub.close();
    const fresh = cli('dlq', 'retry', id('dl2'), '--fresh');
    assert.equal([fresh.code, fresh.out.split('\n').at(-2)], [0, 'retried 1 of 1; an event that fails again becomes a new dead letter with a new id (agentbus dlq ls --group CliEraser)'], fresh.err);
    assert.is(records('dl2'), 0, 'removed before the hand-back');
    assert.is(cli('dlq', 'purge', id('dl2'), '--fresh').code, 2, '--fresh is dlq retry\'s');
  } finally {
    await sub.close();
    await bus.close();
  }
});

test('state waits lists a keyed handler\'s durable wait from another process; state get of a key with no state yet shows its wait and its recorded step', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const parked: string[] = [];
  const sub = await bus.subscribe({ group: 'CliWaiter', types: ['cli.ticket'], waitsFor: ['cli.approved'], key: 'subject' }, async (e, c) => {
    const ctx = c as KeyedDeliveryContext<{ ok: boolean } | null>;
    await ctx.step('draft', () => ({ text: `draft of ${ctx.key}` }));
    parked.push(ctx.key);
    await ctx.waitFor('cli.approved', { timeout: '1d' });
    ctx.state = { ok: true };
  });
  try {
    await bus.publish('cli.ticket', {}, { subject: 't1' });
    await waitFor('parked', () => parked.length === 1);
    let ls = cli('state', 'waits', 'CliWaiter');
    await waitFor('listed', () => (ls = cli('state', 'waits', 'CliWaiter')).out.includes('t1'), 10_000, 200);
    assert.is(ls.code, 0, ls.err);
    assert.match(ls.out, /^KEY +TYPE +DEADLINE +STATUS +ID\nt1 +cli\.approved +\d{4}-\S+Z +waiting +\S+\n$/);
    const json = JSON.parse(cli('state', 'waits', 'CliWaiter', '--key', 't1', '--json').out);
    assert.equal([json.length, json[0].key, json[0].type, json[0].matched], [1, 't1', 'cli.approved', false]);
    assert.ok(Math.abs(Date.parse(json[0].deadline) - (Date.now() + 86_400_000)) < 120_000, json[0].deadline);
    assert.equal(JSON.parse(cli('state', 'waits', 'CliWaiter', '--key', 't2', '--json').out), []);
    const none = cli('state', 'get', 'CliWaiter', 't1');
    assert.is(none.code, 1);
    assert.match(none.err, /^agentbus: no state yet for key "t1" of agent CliWaiter; its handler has 1 durable wait\(s\): cli\.approved until \d{4}-\S+Z and 1 step result\(s\) recorded\n$/);
    const shown = JSON.parse(none.out);
    assert.equal([shown.state, shown.waits.map((w: { type: string }) => w.type), shown.steps], [null, ['cli.approved'], [{ name: 'draft', recorded: true, result: { text: 'draft of t1' } }]]);
    await bus.publish('cli.approved', {}, { subject: 't1' });
    await waitFor('committed', async () => (await bus.keys!.get('CliWaiter', 't1')) !== null);
    await waitFor('record removed', async () => (await bus.keys!.waits('CliWaiter')).length === 0);
    const got = cli('state', 'get', 'CliWaiter', 't1');
    assert.is(got.code, 0, got.err);
    assert.equal([JSON.parse(got.out).state, JSON.parse(got.out).waits, JSON.parse(got.out).steps], [{ ok: true }, [], []], 'committed: its records are gone');
    assert.is(cli('state', 'waits', 'CliWaiter').out, 'KEY  TYPE  DEADLINE  STATUS  ID\n');
  } finally {
    await sub.close();
    await bus.close();
  }
});

test('state: a missing subcommand or agent, a bad --limit, paging without an agent: one line, exit 2, before any store is opened', async () => {
  const missing = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'none.db');
  await refused(
    [
      [['state'], 'agentbus: state needs a command: get, ls, waits, rm (see agentbus help state)', 'spawn'],
      [['state', 'gte', 'A', 'k'], 'agentbus: unknown state command "gte": did you mean get? (see agentbus help state)'],
      [['state', 'get', 'A'], 'agentbus: state get needs <agent> <key> (see agentbus help state)', 'spawn'],
      [['state', 'rm', 'A'], 'agentbus: state rm needs <agent> <key...> (see agentbus help state)'],
      [['state', 'ls', 'A', 'B'], 'agentbus: state ls takes [<agent>], and not also "B" (see agentbus help state)'],
      [['state', 'ls', 'A', '--limit', '10001'], 'agentbus: INVALID_OPTION: invalid --limit 10001: expected an integer from 1 to 10000', 'spawn'],
      [['state', 'ls', '--after', 'k'], 'agentbus: state ls --after page through one agent\'s keys: name the agent (state ls <agent>); without it the keyed agents are listed whole (see agentbus help state)'],
      [['state', 'get', 'A', 'k', '--json'], 'agentbus: unknown option --json for state get: state get takes no options (see agentbus help state)'],
    ],
    { AGENTBUS_SQLITE_PATH: missing },
  );
  assert.not.ok(existsSync(missing), 'a refused command opened the store');
  const r = cliWith({ AGENTBUS_SQLITE_PATH: missing }, 'state', 'ls');
  assert.is(r.code, 1, r.err);
  assert.ok(r.err.includes('CONNECTION_FAILED: no agentbus database at'), `state ls opens read-only: ${r.err}`);
  assert.not.ok(existsSync(missing), 'state ls created the file');
});

test('every command that writes, on a SQLite path with no file: CONNECTION_FAILED naming it (exit 1), no database created; publish creates it', async () => {
  const missing = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'typo.db');
  const writers: [string, string[]][] = [
    ['dlq retry', ['dlq', 'retry', '1']],
    ['dlq purge', ['dlq', 'purge', '1']],
    ['state rm', ['state', 'rm', 'A', 'k']],
    ['schedules rm', ['schedules', 'rm', '1']],
    ['schedules rm', ['schedules', 'rm', '--name', 'n']],
    ['rewind', ['rewind', '--group', 'g', '--type', 'cli.x']],
    ['replay --group', ['replay', '--group', 'g', '--types', 'cli.x']],
    ['replay --agent', ['replay', '--agent', 'Recorder', '--agents', 'test/fixtures/agents/replay.ts']],
  ];
  const results = await clis({ AGENTBUS_SQLITE_PATH: missing }, writers.map(([, args]) => args));
  for (const [i, [what, args]] of writers.entries()) {
    assert.equal([results[i].code, results[i].out], [1, ''], `${args.join(' ')}: ${results[i].err}`);
    assert.is(results[i].err, `agentbus: CONNECTION_FAILED: no agentbus database at ${missing}: ${what} works only on what is stored, and creates nothing (check AGENTBUS_SQLITE_PATH)\n`, args.join(' '));
  }
  assert.not.ok(existsSync(missing), 'a database was created');
  // ui --allow-actions opens the store for writing: it fails the same way rather than serve an empty database.
  const ui = spawnSync(process.execPath, ['dist/runtime/cli.js', 'ui', '--port', '0', '--allow-actions'], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, AGENTBUS_SQLITE_PATH: missing } });
  assert.equal([ui.status, ui.stdout], [1, ''], ui.stderr);
  assert.is(ui.stderr, `agentbus: CONNECTION_FAILED: no agentbus database at ${missing}: ui --allow-actions works only on what is stored, and creates nothing (check AGENTBUS_SQLITE_PATH)\n`);
  assert.not.ok(existsSync(missing), 'ui --allow-actions created a database');
  // publish (and start) make the store.
  const p = cliWith({ AGENTBUS_SQLITE_PATH: missing }, 'publish', 'cli.first', '{}');
  assert.is(p.code, 0, p.err);
  assert.ok(existsSync(missing), 'publish creates the database');
});

test('state ls, waits, get and rm of an agent the store does not know say so on stderr, with the nearest known name', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const sub = await bus.subscribe({ group: 'CliKnown', types: ['cli.known'], key: 'subject' }, (_e, ctx) => {
    (ctx as KeyedDeliveryContext<unknown>).state = { seen: true };
  });
  await bus.publish('cli.known', {}, { subject: 'k1' });
  await waitFor('state stored', async () => (await bus.keys!.get('CliKnown', 'k1')) !== null);
  await sub.close();
  await bus.close();
  const note = 'agentbus: no keyed agent "CliKnwon" in this store: did you mean CliKnown? (agentbus state ls lists the keyed agents)\n';
  const [ls, lsJson, waits, get, rm, known, knownKey] = await clis({}, [
    ['state', 'ls', 'CliKnwon'],
    ['state', 'ls', 'CliKnwon', '--json'],
    ['state', 'waits', 'CliKnwon', '--json'],
    ['state', 'get', 'CliKnwon', 'k1'],
    ['state', 'rm', 'CliKnwon', 'k1'],
    ['state', 'ls', 'CliKnown', '--after', 'k1'],
    ['state', 'get', 'CliKnown', 'k9'],
  ]);
  // Listings stay listings (empty, exit 0); the missing key exits 1 as before, naming the agent instead.
  assert.equal([ls.code, ls.err, ls.out], [0, note, 'KEY  VERSION  BYTES  UPDATED AT\n']);
  assert.equal([lsJson.code, lsJson.err, lsJson.out], [0, note, '[]\n']);
  assert.equal([waits.code, waits.err, waits.out], [0, note, '[]\n']);
  assert.equal([get.code, get.err, get.out], [1, note, '']);
  assert.equal([rm.code, rm.err, rm.out], [1, note, 'erased 0 of 1\n']);
  // A known agent with nothing past the page, or without the key: no such note.
  assert.equal([known.code, known.err], [0, '']);
  assert.equal([knownKey.code, knownKey.err], [1, 'agentbus: no state for key "k9" of agent CliKnown (agentbus state ls CliKnown lists its keys)\n']);
  assert.is(cli('state', 'rm', 'CliKnown', 'k1').code, 0);
});

test('an unknown agent option names the option once', () => {
  const r = cli('start', '--agents', 'test/fixtures/agents/typo.ts', '--port', '0');
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /^agentbus: INVALID_OPTION: unknown agent Typo option "concurency": did you mean concurrency\? \(expected one of concurrency, /);
});

test('a failing command prints its one agentbus: line and no log record before it (Redis unreachable); LOG_LEVEL shows records as one-liners', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const env = { AGENTBUS_ADAPTER: 'redis', REDIS_URL: `redis://127.0.0.1:${port}`, AGENTBUS_REDIS_CONNECT_TIMEOUT_MS: '1000' };
  const lists = [['stats'], ['publish', 'a.b', '{}']];
  for (const [i, r] of (await clis(env, lists)).entries()) {
    assert.is(r.code, 1, r.err);
    assert.is(r.err.trimEnd().split('\n').length, 1, `${lists[i].join(' ')}: more than the error line:\n${r.err}`);
    assert.match(r.err, /^agentbus: CONNECTION_FAILED: /);
  }
  const verbose = cliWith({ ...env, LOG_LEVEL: 'warn' }, 'stats');
  assert.is(verbose.code, 1);
  const lines = verbose.err.trimEnd().split('\n');
  assert.ok(lines.length > 1, verbose.err);
  assert.not.ok(lines.some((l) => l.startsWith('{')), `a JSON record on the terminal:\n${verbose.err}`);
  assert.match(lines[0], /^\[warn\] redis connection error.*\(redis=redis:\/\/127\.0\.0\.1:\d+\/0, .*err=.*ECONNREFUSED/);
  assert.match(lines.at(-1)!, /^agentbus: CONNECTION_FAILED: /);
});

test('dlq ls, show, retry reach a dead letter made by a real consumer; purge of an unknown id exits 1', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  let fail = true;
  const handled: string[] = [];
  const sub = await bus.subscribe({ group: 'cli-g', types: ['cli.dl'], maxAttempts: 1 }, (e) => {
    if (fail) throw new Error('downstream unavailable');
    handled.push(e.id);
  });
  const id = await bus.publish('cli.dl', { x: 1 }, { subject: 'order-7' });
  await waitFor('dead letter', async () => (await bus.deadLetters.list({ group: 'cli-g' })).length === 1);
  const ls = cli('dlq', 'ls', '--group', 'cli-g', '--json');
  assert.is(ls.code, 0, ls.err);
  const [dl] = JSON.parse(ls.out);
  assert.is(dl.event.id, id);
  assert.is(dl.event.subject, 'order-7', '--json carries the subject in the event');
  const [head, row] = cli('dlq', 'ls', '--group', 'cli-g').out.trimEnd().split('\n').map((l) => l.split(/ {2,}/));
  assert.equal(head, ['ID', 'GROUP', 'TYPE', 'EVENT', 'SUBJECT', 'REASON', 'ATTEMPTS', 'FAILED AT', 'ERROR']);
  assert.equal(row.slice(0, 7), [dl.id, 'cli-g', 'cli.dl', id, 'order-7', 'failed', '1']);
  assert.ok(cli('dlq', 'ls').out.includes('downstream unavailable'));
  const shown = JSON.parse(cli('dlq', 'show', dl.id).out);
  assert.is(shown.error, dl.error);
  assert.is(shown.stack[0], 'Error: downstream unavailable', 'the stack, as its lines');
  assert.ok(shown.stack[1].includes('test/cli.test.ts:'), `names the file that threw: ${shown.stack[1]}`);
  assert.is(cli('dlq', 'show', '999999').code, 1);
  // A full page says there may be more; a page that is not full says nothing.
  assert.ok(cli('dlq', 'ls', '--group', 'cli-g', '--limit', '1').out.endsWith('\n(1 shown, the oldest: there may be more; narrow with --group or --type, or raise --limit)\n'));
  assert.not.ok(cli('dlq', 'ls', '--group', 'cli-g', '--limit', '2').out.includes('shown'));
  // Retried while the handler still fails: each id says what it was, and the event's next failure
  // is a new dead letter with a new id (the old one names nothing); dlq ls --group finds it.
  const first = cli('dlq', 'retry', dl.id);
  assert.equal([first.code, first.err], [0, ''], first.out);
  assert.is(first.out, `retried ${dl.id}: event ${id} of cli.dl, back to group cli-g\nretried 1 of 1; an event that fails again becomes a new dead letter with a new id (agentbus dlq ls --group cli-g)\n`);
  await waitFor('dead-lettered again', async () => (await bus.deadLetters.list({ group: 'cli-g' })).length === 1);
  const [again] = JSON.parse(cli('dlq', 'ls', '--group', 'cli-g', '--json').out);
  assert.is(again.event.id, id);
  assert.is.not(again.id, dl.id, 'a new dead letter id');
  const old = cli('dlq', 'show', dl.id);
  assert.equal([old.code, old.err, old.out], [1, gone(dl.id), '']);
  fail = false;
  const r = cli('dlq', 'retry', again.id, '--json');
  assert.is(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out), { done: 1, missing: [], items: [{ id: again.id, group: 'cli-g', type: 'cli.dl', eventId: id }], of: 1 });
  await waitFor('retried event handled (across processes)', () => handled.length === 1, 5000);
  assert.equal(handled, [id]);
  assert.is(cli('dlq', 'purge', '424242').code, 1);
  await sub.close();
  await bus.close();
});

test('dlq ls --group with no dead letters says so on stderr; a group the store does not know, with the nearest known name', async () => {
  const own = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'groups.db');
  const bus = await createSqliteBus({ path: own, logger: pino({ level: 'silent' }) });
  const subs = [
    await bus.subscribe({ group: 'CliBilling', types: ['cli.bill'] }, () => {}),
    await bus.subscribe({ group: 'CliFailing', types: ['cli.fail'], maxAttempts: 1 }, () => {
      throw new Error('no');
    }),
  ];
  await bus.publish('cli.fail', {});
  await bus.publish('cli.bill', {});
  await waitFor('dead letter', async () => (await bus.deadLetters.list({ group: 'CliFailing' })).length === 1);
  for (const s of subs) await s.close();
  await bus.close();
  const [typo, typoJson, empty, emptyType, full, nothing] = await clis({ AGENTBUS_SQLITE_PATH: own }, [
    ['dlq', 'ls', '--group', 'CliBiling'],
    ['dlq', 'ls', '--group', 'CliBiling', '--json'],
    ['dlq', 'ls', '--group', 'CliBilling'],
    ['dlq', 'ls', '--group', 'CliFailing', '--type', 'cli.bill'],
    ['dlq', 'ls', '--group', 'CliFailing'],
    ['dlq', 'ls', '--group', 'Zzzzzzzz'],
  ]);
  const head = 'ID  GROUP  TYPE  EVENT  SUBJECT  REASON  ATTEMPTS  FAILED AT  ERROR\n';
  assert.equal([typo.code, typo.out, typo.err], [0, head, 'agentbus: no dead letters of group "CliBiling": no such group in this store, did you mean CliBilling? (agentbus stats lists the groups)\n']);
  assert.equal([typoJson.code, typoJson.out, typoJson.err], [0, '[]\n', typo.err]);
  assert.equal([empty.code, empty.out, empty.err], [0, head, 'agentbus: group CliBilling has no dead letters\n']);
  assert.equal([emptyType.code, emptyType.err], [0, 'agentbus: group CliFailing has no dead letters of type cli.bill\n']);
  assert.equal([full.code, full.err], [0, '']);
  assert.is(nothing.err, 'agentbus: no dead letters of group "Zzzzzzzz": no such group in this store (agentbus stats lists the groups)\n');
});

test('replay --agent hands stored events to the agent (from its file, --from earliest) and moves no group; a failure exits 1', async () => {
  const log = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'replay.log');
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  await bus.publishBatch([1, 2, 3].map((n) => ({ type: 'cli.replay', data: { n } })));
  await bus.close();
  const r = cliWith({ REPLAY_LOG: log }, 'replay', '--agent', 'Recorder', '--agents', 'test/fixtures/agents/replay.ts', '--from', 'earliest', '--json');
  assert.is(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out), { handled: 3, failed: [], published: { count: 0, stored: false, events: [] } });
  assert.is(readFileSync(log, 'utf8'), '1\n2\n3\n');
  const stats = JSON.parse(cli('stats', '--json').out).find((t: { type: string }) => t.type === 'cli.replay');
  assert.equal(stats.groups, [], 'no group made or moved');

  const b2 = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const since = new Date(Date.now() + 1);
  await new Promise((r) => setTimeout(r, 5));
  const [, p99] = await b2.publishBatch([{ type: 'cli.replay', data: { n: 4 } }, { type: 'cli.replay', data: { n: 99 } }]);
  await b2.close();
  const t = cliWith({ REPLAY_LOG: log }, 'replay', '--agent', 'Recorder', '--agents', 'test/fixtures/agents/replay.ts', '--types', 'cli.replay', '--from', since.toISOString());
  assert.is(t.code, 1, t.err);
  assert.match(t.out, /replayed 2: 1 handled, 1 failed/);
  assert.match(t.out, new RegExp(`failed cli.replay \\d+ ${p99}: Error: cannot take 99`));
  assert.ok(readFileSync(log, 'utf8').endsWith('3\n4\n'));
  const none = cliWith({ REPLAY_LOG: log }, 'replay', '--agent', 'Nobody', '--agents', 'test/fixtures/agents/replay.ts');
  assert.is(none.code, 2);
  assert.match(none.err, /no agent "Nobody" in this host \(agents: Recorder\)/);
});

test('rewind and replay --group deliver a group\'s events again through the running consumer', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const got: number[] = [];
  const sub = await bus.subscribe({ group: 'cli-rw', types: ['cli.rw'], from: 'earliest' }, (e) => void got.push((e.data as { n: number }).n));
  await bus.publishBatch([1, 2].map((n) => ({ type: 'cli.rw', data: { n } })));
  await waitFor('first pass', () => got.length === 2);
  const r = cli('rewind', '--group', 'cli-rw', '--type', 'cli.rw', '--from', 'earliest', '--json');
  assert.is(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out), { group: 'cli-rw', type: 'cli.rw', from: 'earliest' }, 'rewind --json, as replay --group --json');
  await waitFor('second pass after rewind', () => got.length === 4, 5000);
  const g = cli('replay', '--group', 'cli-rw', '--types', 'cli.*', '--json');
  assert.is(g.code, 0, g.err);
  assert.equal(JSON.parse(g.out).types, ['cli.rw'], 'the pattern names only topics the group reads');
  await waitFor('third pass after replay --group', () => got.length >= 6, 5000);
  assert.equal(got.slice(0, 6), [1, 2, 1, 2, 1, 2]);
  await sub.close();
  await bus.close();
});

test('stats and dlq ls/show open the file read-only: a missing file is not created, another application\'s file is refused untouched', () => {
  const folder = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'nothing-here');
  const missing = join(folder, 'bus.db');
  for (const args of [['stats'], ['dlq', 'show', '1']]) {
    const r = cliWith({ AGENTBUS_SQLITE_PATH: missing }, ...args);
    assert.is(r.code, 1, `${args.join(' ')}: ${r.err}`);
    assert.ok(r.err.includes(`CONNECTION_FAILED: no agentbus database at ${missing}; start a host or publish first`), r.err);
  }
  assert.not.ok(existsSync(folder), 'an inspection command created the folder or the file');
  const foreign = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'app.db');
  const db = new Database(foreign);
  db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
  db.pragma('user_version = 7');
  db.close();
  const before = readFileSync(foreign);
  for (const args of [['stats'], ['publish', 'cli.x', '{}']]) {
    const r = cliWith({ AGENTBUS_SQLITE_PATH: foreign }, ...args);
    assert.is(r.code, 1, r.err);
    assert.match(r.err, /CONNECTION_FAILED: cannot open SQLite database ".*app\.db": it has 1 table of another application \(users; user_version 7\) and no agentbus schema/);
  }
  assert.ok(readFileSync(foreign).equals(before), 'the foreign file changed');
});

test('stats reads, read-only, a live database a running host has open', async () => {
  const live = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'live.db');
  const log = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'work.log');
  const host = await startHost('test/fixtures/agents/work.ts', { AGENTBUS_SQLITE_PATH: live, WORK_TYPE: 'cli.live', WORK_LOG: log });
  try {
    const writer = await createSqliteBus({ path: live, logger: pino({ level: 'silent' }) });
    await writer.publishBatch([0, 1, 2].map((n) => ({ type: 'cli.live', data: { n } })));
    await writer.close();
    await waitFor('the host handled 3', () => workLog(log).dones.size === 3, 10_000);
    const r = cliWith({ AGENTBUS_SQLITE_PATH: live }, 'stats', '--json');
    assert.is(r.code, 0, r.err);
    const [topic] = JSON.parse(r.out);
    assert.equal([topic.type, topic.length, topic.groups.length, topic.groups[0].lag, topic.groups[0].pending], ['cli.live', 3, 1, 0, 0]);
    assert.is(cliWith({ AGENTBUS_SQLITE_PATH: live }, 'dlq', 'ls', '--json').out.trim(), '[]');
    assert.ok(host.out.some((l) => l.includes(`"msg":"store: SQLite ${live}"`)), `the start-up log names the store:\n${host.out.join('\n')}`);
  } finally {
    host.proc.kill('SIGTERM');
    await host.exited;
  }
});

test('control bytes from the store reach the terminal escaped: dlq ls cells, replay failure lines; a bad failed_at lists as invalid', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  const nasty = 'red \x1b[31m bell \x07 nul \x00 del \x7f csi \x9b end';
  const sub = await bus.subscribe({ group: 'cli-ctl', types: ['cli.ctl'], maxAttempts: 1 }, () => {
    throw new Error(nasty);
  });
  await bus.publish('cli.ctl', {});
  await waitFor('dead letter', async () => (await bus.deadLetters.list({ group: 'cli-ctl' })).length === 1);
  await sub.close();
  const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
  const ls = cli('dlq', 'ls', '--group', 'cli-ctl');
  assert.is(ls.code, 0, ls.err);
  assert.not.match(ls.out, raw, 'a raw control byte reached the terminal');
  assert.ok(ls.out.includes('red \\x1b[31m bell \\x07 nul \\x00 del \\x7f csi \\x9b'), ls.out);
  assert.is(ls.out.split('\n')[1].split(/ {2,}/)[4], '-', 'SUBJECT of an event published without one');
  assert.ok(JSON.parse(cli('dlq', 'ls', '--group', 'cli-ctl', '--json').out)[0].error.includes(nasty), '--json keeps the text');

  const since = new Date(Date.now() + 1);
  await new Promise((r) => setTimeout(r, 5));
  await bus.publish('cli.replay', { n: 99, why: ' \x1b]0;owned\x07' });
  const r = cli('replay', '--agent', 'Recorder', '--agents', 'test/fixtures/agents/replay.ts', '--types', 'cli.replay', '--from', since.toISOString());
  assert.is(r.code, 1, r.err);
  assert.not.match(r.out, raw);
  assert.ok(r.out.includes('cannot take 99 \\x1b]0;owned\\x07'), r.out);

  // A dead letter whose stored time is damaged still lists.
  const db = new Database(path);
  db.prepare("UPDATE dead_letters SET failed_at = 'garbage' WHERE grp = 'cli-ctl'").run();
  db.close();
  const broken = cli('dlq', 'ls', '--group', 'cli-ctl');
  assert.is(broken.code, 0, broken.err);
  assert.ok(broken.out.includes('(invalid)'), broken.out);
  assert.is(JSON.parse(cli('dlq', 'ls', '--group', 'cli-ctl', '--json').out)[0].failedAt, null);
  await bus.close();
});

test('bounds out of range exit 2 with a one-line error, not a store error', () => {
  for (const from of ['1000000000000000000000', '1'.repeat(23) + '-0']) {
    const r = cli('rewind', '--group', 'g', '--type', 'cli.test', '--from', from);
    assert.is(r.code, 2, `${from}: ${r.err}`);
    assert.match(r.err, /INVALID_OPTION: invalid from/);
  }
});

test('replay --agent prints what the agent would publish and stores none of it; --publish stores it', async () => {
  const bus = await createSqliteBus({ path, logger: pino({ level: 'silent' }) });
  await bus.publishBatch([1, 2].map((n) => ({ type: 'cli.order.placed', data: { n } })));
  await bus.close();
  const processed = () => JSON.parse(cli('stats', '--json').out).find((t: { type: string }) => t.type === 'cli.order.processed')?.length ?? 0;
  const replay = (...more: string[]) => cli('replay', '--agent', 'Processor', '--agents', 'test/fixtures/agents/orders.ts', ...more);
  const r = replay();
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /replayed 2: 2 handled, 0 failed\nwould have published 2 events \(not stored; --publish stores them\):\n/);
  assert.match(r.out, /\n {2}cli\.order\.processed [0-9a-f-]{36} \{"n":1,"replaying":true\}\n {2}cli\.order\.processed [0-9a-f-]{36} \{"n":2,"replaying":true\}\n/);
  const j = replay('--json');
  assert.is(j.code, 0, j.err);
  const { published } = JSON.parse(j.out);
  assert.equal([published.count, published.stored, published.events[1].subject, published.events[1].data], [2, false, 'order-2', { n: 2, replaying: true }]);
  assert.is(processed(), 0, 'two replays stored nothing');
  const p = replay('--publish');
  assert.is(p.code, 0, p.err);
  assert.match(p.out, /published 2 events \(stored: --publish\)/);
  assert.is(processed(), 2, '--publish stored them');
  const g = cli('replay', '--group', 'cli-order', '--types', 'cli.order.placed', '--publish');
  assert.is(g.code, 2);
  assert.match(g.err, /replay --group takes no --publish \(they go with --agent\)/);
});

test('start: a failing handler\'s warn line carries err.stack naming the agent file and line that threw', async () => {
  const live = join(mkdtempSync(join(tmpdir(), 'agentbus-cli-')), 'stack.db');
  const host = await startHost('test/fixtures/agents/throws.ts', { AGENTBUS_SQLITE_PATH: live });
  try {
    const writer = await createSqliteBus({ path: live, logger: pino({ level: 'silent' }) });
    await writer.publish('stack.trace', {});
    await writer.close();
    // maxAttempts 1: the failure is final, so its one warn line is the dead letter's, with the stack.
    const failed = () => host.out.find((l) => l.includes('"msg":"dead letter"'));
    await waitFor('the warn line', () => failed() !== undefined, 10_000);
    const line = JSON.parse(failed()!) as { level: number; group: string; error: string; stack: string };
    assert.equal([line.level, line.group, line.error], [40, 'Thrower', 'Error: thrown at a known line']);
    assert.ok(line.stack.includes('test/fixtures/agents/throws.ts:9:'), line.stack);
  } finally {
    host.proc.kill('SIGTERM');
    await host.exited;
  }
});

test('start --exit-on-failure: an agent past its restart intensity ends the host with exit 1', () => {
  const r = spawnSync(process.execPath, ['dist/runtime/cli.js', 'start', '--agents', 'test/fixtures/agents/broken.ts', '--port', '0', '--exit-on-failure'], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, AGENTBUS_SQLITE_PATH: path, LOG_FORMAT: 'json' },
  });
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /agent NoDatabase: crashed -> failed/);
  assert.match(r.stdout, /"error":"Error: database unreachable"/);
  assert.match(r.stdout, /"why":"agent NoDatabase failed"/);
});

test('start, replay and rewind refuse bad arguments with a one-line error and exit 2', () => {
  const cases: [string[], RegExp][] = [
    [['start', '--agents', 'no/such/place'], /--agents no\/such\/place: no such file or folder, and no installed module of that name/],
    [['start', '--agents', 'test/fixtures/agents/replay.ts', '--port', 'eighty'], /invalid port \(--port, AGENTBUS_HTTP_PORT\) "eighty": expected an integer from 0 to 65535/],
    [['start', 'extra'], /start takes no positional argument/],
    [['replay', '--types', 'a.b'], /replay needs --agent NAME .* or --group G/],
    [['replay', '--group', 'g'], /replay needs --types/],
    [['rewind', '--group', 'g'], /rewind needs --group G --type T/],
    [['rewind', '--group', 'g', '--type', 'a.b', '--from', 'yesterday'], /invalid from "yesterday"/],
  ];
  for (const [args, msg] of cases) {
    const r = cli(...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, msg);
  }
  const bad = cliWith({ AGENTBUS_ADAPTER: 'postgres' }, 'stats');
  assert.is(bad.code, 2);
  assert.match(bad.err, /unknown adapter "postgres" \(AGENTBUS_ADAPTER\): expected sqlite or redis/);
  const help = cli('start', '--help');
  assert.is(help.code, 0);
  assert.match(help.out, /start \[--agents PATH\]/);
});

test('ui serves the admin UI against the store, read-only unless --allow-actions, until SIGTERM (exit 0); a bad port is refused (exit 2)', async () => {
  const bad = cli('ui', '--port', 'eighty');
  assert.equal([bad.code, bad.out], [2, '']);
  assert.match(bad.err, /^agentbus: INVALID_OPTION: invalid port \(--port, AGENTBUS_UI_PORT\)/);
  for (const allow of [false, true]) {
    const child = spawn(process.execPath, ['dist/runtime/cli.js', 'ui', '--port', '0', ...(allow ? ['--allow-actions'] : [])], { env: { ...process.env, AGENTBUS_SQLITE_PATH: path } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await waitFor('the UI address', () => /admin UI on (http:\/\/127\.0\.0\.1:\d+)\/ui\//.test(out));
    const url = /admin UI on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1];
    assert.match(out, allow ? /actions allowed/ : /read-only/);
    const topics = (await (await fetch(`${url}/ui/api/topics`)).json()) as { type: string }[];
    assert.ok(topics.some((t) => t.type === 'cli.test'), 'the store\'s topics');
    const overview = (await (await fetch(`${url}/ui/api/overview`)).json()) as { served: string; actions: boolean; host: unknown };
    assert.equal([overview.served, overview.actions, overview.host], ['store', allow, null]);
    const retry = await fetch(`${url}/ui/api/dead-letters/retry`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-agentbus-ui': '1' }, body: JSON.stringify({ ids: ['nope'] }) });
    assert.is(retry.status, allow ? 200 : 403);
    assert.is((await fetch(`${url}/`, { redirect: 'manual' })).headers.get('location'), '/ui/');
    child.kill('SIGTERM');
    assert.is(await exited, 0, err);
  }
});

test.run();
