// The source's shape, checked as a reader relies on it: no import cycles in the layers below the
// adapters and above them, the one default logger, each option's documented default being its
// table's, every adapter taking every bus option, and the lifecycle states listed once.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKOFF_OPTIONS, BUS_OPTION_KEYS, BUS_OPTIONS, DEDUP_WINDOW_MS, DELIVERY_OPTIONS, RETENTION_OPTIONS, SUBSCRIBE_OPTIONS, type OptionSpec } from '../bus/options.js';
import { KEYED_OPTIONS } from '../bus/keyed/options.js';
import { AGENT_OPTIONS } from '../runtime/agent-spec.js';
import { LIFECYCLE_STATES, lifecycle } from '../runtime/lifecycle.js';
import { defaultLogger } from '../bus/logger.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { createRedisBus } from '../adapters/redis/index.js';

const root = process.cwd();

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(join(root, p)).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports (type-only ones too: a cycle of types still ties two files together). */
function importsOf(file: string): string[] {
  const src = readFileSync(join(root, file), 'utf8');
  return [...src.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/gms)].map((m) => relative(root, resolve(root, dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
}

function cycles(files: string[]): string[] {
  const inScope = new Set(files);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of importsOf(f).filter((d) => inScope.has(d))) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d].join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

test('bus/, adapters/, agents/ and runtime/ import no module that imports them back', () => {
  const files = [...sources('bus'), ...sources('adapters'), ...sources('agents'), ...sources('runtime'), 'index.ts'];
  assert.equal(cycles(files), []);
});

test('the default pino logger is built in one place; the CLI variants in another', () => {
  const allowed: Record<string, string> = {
    'bus/logger.ts': 'the default logger',
    'runtime/cli-logger.ts': "the CLI's terminal variants",
    'runtime/doctor.ts': 'a collector of the adapter check records, not a logger anyone reads',
  };
  const builders = ['bus', 'adapters', 'runtime', 'agents']
    .flatMap(sources)
    .filter((f) => !(f in allowed) && /\bpino\(\s*\{/.test(readFileSync(join(root, f), 'utf8')));
  assert.equal(builders, [], 'build loggers through defaultLogger (bus/logger.ts)');
});

test('the default logger reads LOG_LEVEL, an empty one counting as unset', () => {
  assert.is(defaultLogger({}).level, 'info');
  assert.is(defaultLogger({ LOG_LEVEL: '' }).level, 'info');
  assert.is(defaultLogger({ LOG_LEVEL: 'debug' }).level, 'debug');
});

/** `@default` of each property of an interface (or object type) declared in `file`. */
function documentedDefaults(file: string, name: string): Map<string, string | undefined> {
  const src = readFileSync(join(root, file), 'utf8');
  const start = src.search(new RegExp(`^export (?:interface|type) ${name}\\b`, 'm'));
  assert.ok(start >= 0, `${name} not found in ${file}`);
  const open = src.indexOf('{', start);
  const end = src.slice(open).search(/^}/m) + open;
  const body = src.slice(open + 1, end);
  const out = new Map<string, string | undefined>();
  for (const m of body.matchAll(/(?:\/\*\*([\s\S]*?)\*\/\s*)?^ {2}(\w+)\??:/gm)) {
    out.set(m[2]!, /@default (.+?)\s*(?:\n|$)/.exec(m[1] ?? '')?.[1]);
  }
  return out;
}

test("every option's @default is its table's default, and every option of the type is in the table", () => {
  const sets: Array<[string, string, Record<string, OptionSpec<unknown>>]> = [
    ['bus/contract-options.ts', 'BusOptions', BUS_OPTIONS],
    ['bus/contract-options.ts', 'RetentionOptions', RETENTION_OPTIONS],
    ['bus/contract-options.ts', 'BackoffOptions', BACKOFF_OPTIONS],
    ['bus/contract-options.ts', 'DeliveryOptions', DELIVERY_OPTIONS],
    ['bus/contract-options.ts', 'SubscribeOptions', Object.fromEntries(Object.entries(SUBSCRIBE_OPTIONS).filter(([k]) => !(k in DELIVERY_OPTIONS) && !(k in KEYED_OPTIONS)))],
    ['bus/keyed/contract.ts', 'KeyedOptions', { key: KEYED_OPTIONS.key, initialState: KEYED_OPTIONS.initialState, waitsFor: KEYED_OPTIONS.waitsFor }],
    ['bus/keyed/contract.ts', 'KeyedStateOptions', { maxActiveKeys: KEYED_OPTIONS.maxActiveKeys, maxStateBytes: KEYED_OPTIONS.maxStateBytes, stateTtlMs: KEYED_OPTIONS.stateTtlMs }],
    ['agents/base.ts', 'AgentOptions', AGENT_OPTIONS],
  ];
  for (const [file, name, table] of sets) {
    const docs = documentedDefaults(file, name);
    assert.equal([...docs.keys()], Object.keys(table), `${name}: the properties of the type, in the table's order`);
    for (const [key, spec] of Object.entries(table)) assert.is(docs.get(key), spec.doc, `${name}.${key}: @default in ${file}`);
  }
  // The defaults as the tables resolve them.
  assert.is(BUS_OPTIONS.maxPayloadBytes.resolve('x', undefined), 1024 * 1024);
  assert.is(DEDUP_WINDOW_MS.resolve('x', undefined), 3_600_000);
  assert.equal(DELIVERY_OPTIONS.backoff.resolve('x', undefined), { initialMs: 100, maxMs: 30_000, factor: 2 });
});

test('each adapter takes every bus option beside its own', async () => {
  const listed = (err: unknown) => /expected one of (.*)$/.exec((err as Error).message)?.[1]?.split(', ') ?? [];
  const sqlite = await createSqliteBus({ nope: 1 } as never).then(() => null, (e: unknown) => e);
  const redis = await createRedisBus({ nope: 1 } as never).then(() => null, (e: unknown) => e);
  for (const [name, err] of [['sqlite', sqlite], ['redis', redis]] as const) {
    assert.match(String((err as Error)?.message), `unknown ${name} option "nope"`);
    for (const k of BUS_OPTION_KEYS) assert.ok(listed(err).includes(k), `${name} does not list ${k}: ${(err as Error).message}`);
  }
});

test("a publish's dedup window has the bus option's range", async () => {
  const bus = await createSqliteBus({ path: ':memory:', logger: defaultLogger({ LOG_LEVEL: 'silent' }) });
  try {
    const err = await bus.publish('a', {}, { id: 'x', dedupWindowMs: DEDUP_WINDOW_MS.max + 1 }).then(() => null, (e: Error) => e);
    assert.is(err?.message, `invalid dedupWindowMs ${DEDUP_WINDOW_MS.max + 1}: expected an integer from 0 to ${DEDUP_WINDOW_MS.max}`);
    const busErr = await createSqliteBus({ path: ':memory:', dedupWindowMs: DEDUP_WINDOW_MS.max + 1 }).then(() => null, (e: Error) => e);
    assert.is(busErr?.message, err?.message);
  } finally {
    await bus.close();
  }
});

test("Driver's members are its groups, and each adapter's driver.ts only wires its parts into them (no method routing calls)", () => {
  const src = readFileSync(join(root, 'bus/driver.ts'), 'utf8');
  const body = src.slice(src.indexOf('export interface Driver {'));
  const members = [...body.slice(0, body.search(/^}/m)).matchAll(/^ {2}(?:readonly )?(\w+)\??[:(]/gm)].map((m) => m[1]);
  assert.equal(members, ['log', 'groups', 'reads', 'leases', 'deadLetters', 'admin', 'state', 'due', 'close']);
  for (const file of ['adapters/redis/driver.ts', 'adapters/sqlite/driver.ts']) {
    const methods = [...readFileSync(join(root, file), 'utf8').matchAll(/^ {2}(?:async )?(\w+)\(.*\)(?:: [^=\n]*)? \{$/gm)].map((m) => m[1]);
    assert.equal(methods, ['close'], `${file}: methods besides constructor and close`);
  }
});

test('the lifecycle states are listed once, as the machine has them', () => {
  assert.equal(Object.keys(lifecycle.config.states ?? {}).sort(), [...LIFECYCLE_STATES].sort());
});

test.run();
