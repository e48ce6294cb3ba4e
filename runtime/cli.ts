#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createBus } from './config.js';
import type { Bus, DeadLetter } from '../bus/contract.js';
import { AgentbusError } from '../bus/errors.js';

const USAGE = `usage: agentbus <command> [options]

commands:
  publish <type> <json> [--subject S] [--id ID]   store one event, print its id
  stats [--json]                                   topics, length, groups, pending, lag, dead letters
  dlq ls [--group G] [--type T] [--limit N] [--json]
  dlq show <id>                                    one dead letter, as JSON
  dlq retry <id...>                                hand back to the group that failed them
  dlq purge <id...>                                remove for good

The store comes from the environment: AGENTBUS_ADAPTER (sqlite), AGENTBUS_SQLITE_PATH (./data/agentbus.db).
Exit codes: 0 done, 1 failed, 2 bad arguments.`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      json: { type: 'boolean' },
      subject: { type: 'string' },
      id: { type: 'string' },
      group: { type: 'string' },
      type: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (!['publish', 'stats', 'dlq'].includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const bus = await createBus({ logger: pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2)) });
  try {
    return await run(bus, command, args, values);
  } finally {
    await bus.close();
  }
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
    console.log(await bus.publish(type, data, { subject: o.subject as string | undefined, id: o.id as string | undefined }));
    return 0;
  }
  if (command === 'stats') {
    const stats = await bus.stats();
    if (o.json) return print(stats), 0;
    const rows = stats.flatMap((t) =>
      t.groups.length === 0 ? [[t.type, t.length, '-', '-', '-', '-', '-']] : t.groups.map((g) => [t.type, t.length, g.group, g.consumers, g.pending, g.lag, g.deadLetters]),
    );
    table(['TOPIC', 'LENGTH', 'GROUP', 'CONSUMERS', 'PENDING', 'LAG', 'DEAD'], rows);
    return 0;
  }
  const [sub, ...ids] = args;
  if (sub === 'ls') {
    const limit = o.limit === undefined ? undefined : Number(o.limit);
    const list = await bus.deadLetters.list({ group: o.group as string | undefined, type: o.type as string | undefined, limit });
    if (o.json) return print(list), 0;
    table(['ID', 'GROUP', 'TYPE', 'EVENT', 'REASON', 'ATTEMPTS', 'FAILED AT', 'ERROR'], list.map(dlRow));
    return 0;
  }
  if (sub === 'show') {
    if (ids.length !== 1) throw new UsageError('dlq show needs one <id>');
    const dl = await bus.deadLetters.get(ids[0]);
    if (dl === null) {
      console.error(`agentbus: no dead letter ${JSON.stringify(ids[0])}`);
      return 1;
    }
    return print(dl), 0;
  }
  if (sub === 'retry' || sub === 'purge') {
    if (ids.length === 0) throw new UsageError(`dlq ${sub} needs at least one <id>`);
    const n = await bus.deadLetters[sub](ids);
    console.log(`${sub === 'retry' ? 'retried' : 'purged'} ${n} of ${ids.length}`);
    return n === ids.length ? 0 : 1;
  }
  throw new UsageError(`unknown dlq command ${JSON.stringify(sub)}: expected ls, show, retry or purge`);
}

const dlRow = (d: DeadLetter) => [d.id, d.group, d.type, d.event?.id ?? '(malformed)', d.reason, d.attempts, d.failedAt, d.error.slice(0, 60)];

function table(head: string[], rows: unknown[][]): void {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  for (const r of cells) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err) => {
    if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`agentbus: ${(err as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      const e = err as Error;
      console.error(`agentbus: ${e instanceof AgentbusError ? `${e.code}: ` : ''}${e.message}`);
      process.exitCode = e instanceof AgentbusError && e.code.startsWith('INVALID') ? 2 : 1;
    }
  },
);
