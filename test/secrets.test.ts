// Redis passwords never reach any output, and the database is the one asked for.
// Every way a password arrives (URL userinfo percent-encoded or with a raw '@', ?password=,
// REDIS_PASSWORD, the password option, a rediss:// URL to a plain port, a wrong password) goes to
// a requirepass server, reachable and not, at LOG_LEVEL=debug, through the library, `agentbus
// start` and every CLI command; no byte of what comes out may hold the password, raw or encoded,
// nor any 6 characters of it in a row.
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createRedisBus, type RedisBusOptions } from '../adapters/redis/index.js';
import { createBus } from '../runtime/config.js';
import { rejects, uniq, waitFor } from './helpers/index.js';
import { freePort, hasRedisServer, startRedisServer, type RedisServer } from './helpers/redis.js';

/** Every character a URL gives a meaning to: percent-encoded wherever a URL carries it. */
const PW = 'Zk7@q:v/9%w?x#Tr3-Lp';
/** Written raw in the userinfo: an unescaped '@' and ':' (the old redaction cut at the first '@'). */
const AT = 'Hn4:sX@tail-Qm8Wd';
/** Sent to the PW server: refused with WRONGPASS, and just as secret. */
const WRONG = 'Wr0ng@pw/%?#Lx5Vb';
const enc = encodeURIComponent;

/** The strings no output may contain: each password in each form, and every 6-character run of those forms. */
const forbidden = (() => {
  const out = new Set<string>();
  for (const p of [PW, AT, WRONG]) {
    const u = new URL('redis://h');
    u.password = p;
    for (const form of [p, enc(p), u.password, new URLSearchParams({ p }).toString().slice(2)]) {
      out.add(form);
      for (let i = 0; i + 6 <= form.length; i++) out.add(form.slice(i, i + 6));
    }
  }
  return [...out];
})();

function assertClean(what: string, text: string): void {
  const hit = forbidden.find((f) => text.includes(f));
  if (hit !== undefined) assert.unreachable(`${what}: ${JSON.stringify(hit)} (from a password) appears in:\n${text}`);
}

/** A pino logger at debug whose output is kept as text. */
function capture() {
  let text = '';
  const stream = new Writable({ write: (c, _e, cb) => ((text += String(c)), cb()) });
  return { logger: pino({ level: 'debug' }, stream), text: () => text };
}

/** Everything an error holds: message, stack, own properties (hidden ones too) and its causes. */
const everything = (err: unknown) => `${inspect(err, { depth: 10, showHidden: true })}\n${JSON.stringify(err)}\n${(err as Error).stack}`;

type Way = { name: string; works: boolean; env: (port: number) => Record<string, string> };
let a: RedisServer; // requirepass PW
let b: RedisServer; // requirepass AT
let dead: number;

const ways: Way[] = [
  { name: 'userinfo, percent-encoded', works: true, env: (p) => ({ REDIS_URL: `redis://:${enc(PW)}@127.0.0.1:${p}/0` }) },
  { name: "userinfo with a raw '@' and ':'", works: true, env: (p) => ({ REDIS_URL: `redis://default:${AT}@127.0.0.1:${p}/0` }) },
  { name: '?password=', works: true, env: (p) => ({ REDIS_URL: `redis://127.0.0.1:${p}/0?password=${enc(PW)}` }) },
  { name: 'REDIS_PASSWORD', works: true, env: (p) => ({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(p), REDIS_PASSWORD: PW }) },
  { name: 'rediss:// to a plain port', works: false, env: (p) => ({ REDIS_URL: `rediss://:${enc(PW)}@127.0.0.1:${p}/0` }) },
  { name: 'wrong password', works: false, env: (p) => ({ REDIS_URL: `redis://:${enc(WRONG)}@127.0.0.1:${p}/0` }) },
];
/** The server a way talks to when reachable. */
const portOf = (w: Way) => (w.env(0).REDIS_URL?.includes(AT) ? b.port : a.port);

const s = suite('secrets');

s.before(async () => {
  [a, b] = await Promise.all([startRedisServer(['--requirepass', PW]), startRedisServer(['--requirepass', AT])]);
  dead = await freePort();
});
s.after(async () => void (await Promise.all([a.stop(), b.stop()])));

s('library: each way, reachable and not, at debug: works or fails with CONNECTION_FAILED naming host:port, never the password', async () => {
  const runs = ways.flatMap((w) => [true, false].map((up) => ({ w, up })));
  // The password option itself, and a password option beside a URL without one.
  const extra: Array<{ name: string; up: boolean; opts: (p: number) => RedisBusOptions; works: boolean }> = [
    { name: 'password option', up: true, works: true, opts: (p) => ({ host: '127.0.0.1', port: p, password: PW }) },
    { name: 'password option', up: false, works: false, opts: (p) => ({ host: '127.0.0.1', port: p, password: PW }) },
  ];
  const all = [
    ...runs.map(({ w, up }) => ({ name: w.name, up, works: w.works && up, call: (log: pino.Logger) => createRedisBus({ logger: log, connectTimeoutMs: 2000 }, { ...w.env(up ? portOf(w) : dead), LOG_LEVEL: 'debug' }), port: up ? portOf(w) : dead })),
    ...extra.map((x) => ({ name: x.name, up: x.up, works: x.works, call: (log: pino.Logger) => createRedisBus({ ...x.opts(x.up ? a.port : dead), logger: log, connectTimeoutMs: 2000 }), port: x.up ? a.port : dead })),
  ];
  await Promise.all(
    all.map(async (r) => {
      const what = `${r.name} (${r.up ? 'reachable' : 'not reachable'})`;
      const log = capture();
      if (r.works) {
        const bus = await r.call(log.logger);
        const type = uniq('secret');
        const got: string[] = [];
        const sub = await bus.subscribe({ group: 'g', types: [type], from: 'earliest' }, (e) => void got.push(e.id));
        await bus.publish(type, { n: 1 });
        await waitFor(`${what}: delivered`, () => got.length === 1);
        await sub.close();
        await bus.close();
      } else {
        const err = await rejects(() => r.call(log.logger), 'CONNECTION_FAILED', `127.0.0.1:${r.port}`);
        assertClean(`${what}: the error`, everything(err));
      }
      assertClean(`${what}: the log`, log.text());
    }),
  );
});

s('library: a reader connection losing the server logs where and why, never the password', async () => {
  const srv = await startRedisServer(['--requirepass', AT]);
  const log = capture();
  const bus = await createRedisBus({ url: `redis://default:${AT}@127.0.0.1:${srv.port}/0`, logger: log.logger });
  const sub = await bus.subscribe({ group: 'g', types: [uniq('reader')] }, () => {});
  await srv.stop(true);
  await waitFor('reader connection error logged', () => log.text().includes('redis reader connection error'), 15_000);
  await srv.start();
  await sub.close();
  await bus.close();
  assert.ok(log.text().includes(`"redis":"redis://default@127.0.0.1:${srv.port}/0"`), log.text());
  assertClean('reader connection log', log.text());
  await srv.stop();
});

/** Runs the CLI from source; `until` ends a long-running command (SIGTERM) once its output matches. */
function cli(env: Record<string, string>, args: string[], until?: RegExp): Promise<{ code: number | null; out: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(REDIS_|AGENTBUS_|LOG_)/.test(k)));
  const proc = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli.ts', ...args], {
    env: { ...base, AGENTBUS_ADAPTER: 'redis', LOG_LEVEL: 'debug', AGENTBUS_HTTP_PORT: '0', AGENTBUS_REDIS_CONNECT_TIMEOUT_MS: '2000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stopped = false;
  const take = (d: Buffer) => {
    out += d.toString();
    if (until && !stopped && until.test(out)) (stopped = true), proc.kill('SIGTERM');
  };
  proc.stdout.on('data', take);
  proc.stderr.on('data', take);
  const killer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => proc.once('close', (code) => (clearTimeout(killer), resolve({ code, out }))));
}

/** At most `n` at a time: the machine is shared. */
async function pool<T>(n: number, jobs: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  }));
  return results;
}

s('CLI: every command and `agentbus start`, each way, reachable and not, at LOG_LEVEL=debug: not one byte of the password', async () => {
  const type = uniq('secrets.cli');
  const commands: string[][] = [
    ['start', '--agents', 'test/fixtures/agents/work.ts'],
    ['publish', type, '{"n":1}'],
    ['stats'],
    ['replay', '--types', type, '--group', 'g'],
    ['replay', '--agent', 'Recorder', '--agents', 'test/fixtures/agents/replay.ts', '--types', type],
    ['rewind', '--group', 'g', '--type', type],
    ['dlq', 'ls'],
    ['dlq', 'show', '1-0'],
    ['dlq', 'retry', '1-0'],
    ['dlq', 'purge', '1-0'],
    ['doctor'],
  ];
  // Every command reachable and not, ways taken in turn so each way meets both; `start` with every way.
  const runs: Array<{ args: string[]; w: Way; up: boolean }> = [];
  commands.forEach((args, i) => {
    for (const up of [true, false]) runs.push({ args, w: ways[(i + (up ? 0 : 3)) % ways.length], up });
  });
  for (const w of ways) if (!runs.some((r) => r.args[0] === 'start' && r.w === w && r.up)) runs.push({ args: commands[0], w, up: true });
  const results = await pool(4, runs.map((r) => async () => {
    const port = r.up ? portOf(r.w) : dead;
    const env = { ...r.w.env(port), WORK_TYPE: type, WORK_LOG: '/dev/null', REPLAY_LOG: '/dev/null' };
    const t0 = Date.now();
    const res = await cli(env, r.args, r.args[0] === 'start' ? /host running/ : undefined);
    return { ...r, port, ...res };
  }));
  for (const r of results) {
    const what = `${r.args.join(' ')} with ${r.w.name} (${r.up ? 'reachable' : 'not reachable'}), exit ${r.code}`;
    assertClean(what, r.out);
    if (r.w.works && r.up) {
      assert.not.ok(r.out.includes('CONNECTION_FAILED'), `${what}: the password did not get through:\n${r.out}`);
      if (r.args[0] === 'start') assert.ok(r.out.includes('host running'), `${what}:\n${r.out}`);
    } else {
      assert.ok(r.out.includes('CONNECTION_FAILED') && r.out.includes(`127.0.0.1:${r.port}`), `${what}: expected CONNECTION_FAILED naming the address:\n${r.out}`);
      assert.is(r.code, 1, what);
    }
  }
});

s('a database the server lacks, or one that is not a number, fails at start naming the value; never database 0 instead', async () => {
  const srv = await startRedisServer(['--databases', '16']);
  const url = `redis://127.0.0.1:${srv.port}`;
  const quiet = pino({ level: 'silent' });
  await rejects(() => createRedisBus({ url: `${url}/99`, logger: quiet, connectTimeoutMs: 2000 }), 'CONNECTION_FAILED', 'cannot select database 99', `127.0.0.1:${srv.port}/99`);
  await rejects(() => createRedisBus({ host: '127.0.0.1', port: srv.port, db: 16, logger: quiet, connectTimeoutMs: 2000 }), 'CONNECTION_FAILED', 'cannot select database 16');
  await rejects(() => createRedisBus({ logger: quiet, connectTimeoutMs: 2000 }, { REDIS_PORT: String(srv.port), REDIS_DB: '99' }), 'CONNECTION_FAILED', 'cannot select database 99');
  for (const bad of ['-1', 'abc', '1x', '1.5']) {
    await rejects(() => createRedisBus({ url: `${url}/${bad}`, logger: quiet }), 'INVALID_OPTION', `invalid database "${bad}" in the Redis URL`);
    await rejects(() => createRedisBus({ logger: quiet }, { REDIS_PORT: String(srv.port), REDIS_DB: bad }), 'INVALID_OPTION', `invalid REDIS_DB "${bad}"`);
  }
  await rejects(() => createRedisBus({ url: `${url}?db=abc`, logger: quiet }), 'INVALID_OPTION', 'invalid database "abc"');
  for (const bad of [-1, 1.5, NaN, '2' as never]) {
    await rejects(() => createRedisBus({ host: '127.0.0.1', port: srv.port, db: bad, logger: quiet }), 'INVALID_OPTION', `invalid db ${JSON.stringify(bad)}`);
  }
  // The highest database works, through the URL, the option and REDIS_DB; an empty REDIS_DB is unset.
  const type = uniq('db');
  for (const bus of [
    await createRedisBus({ url: `${url}/15`, logger: quiet }),
    await createRedisBus({ host: '127.0.0.1', port: srv.port, db: 15, logger: quiet }),
    await createBus({ adapter: 'redis', logger: quiet }, { REDIS_PORT: String(srv.port), REDIS_DB: '15' }),
  ]) {
    await bus.publish(type, 'in 15');
    await bus.close();
  }
  const empty = await createBus({ adapter: 'redis', logger: quiet }, { REDIS_PORT: String(srv.port), REDIS_DB: '' });
  await empty.publish(type, 'in 0');
  await empty.close();
  const { Redis } = await import('ioredis');
  const check = new Redis(`${url}/15`);
  assert.is(await check.xlen(`events:${type}`), 3);
  await check.select(0);
  assert.is(await check.xlen(`events:${type}`), 1);
  check.disconnect();
  await srv.stop();
});

s('a URL that is no Redis URL (another scheme, no scheme before //, a port past 65535) is refused naming what is wrong, not taken as a socket path', async () => {
  const quiet = pino({ level: 'silent' });
  await rejects(() => createRedisBus({ url: 'http://127.0.0.1:6379', logger: quiet }), 'INVALID_OPTION', 'scheme "http:"');
  await rejects(() => createRedisBus({ url: 'redis//127.0.0.1:6379', logger: quiet }), 'INVALID_OPTION', "no scheme before '//'");
  const err = await rejects(() => createRedisBus({ url: `redis://:${PW}@127.0.0.1:99999`, logger: quiet }), 'INVALID_OPTION', 'port 99999, expected 1 to 65535');
  assert.not.ok(everything(err).includes(PW.slice(0, 6)));
});

s("a password with an unescaped '/', '?' or '#' (the URL parses into something else) is refused without repeating the URL", async () => {
  const cases = [
    [`redis://:2024/${PW.slice(0, 8)}@127.0.0.1:6379/0`, PW.slice(0, 8)],
    [`redis://:12?Zk7q${PW.slice(8)}@127.0.0.1:6379`, PW.slice(8)],
    [`redis://:${PW}@127.0.0.1:6379/0`, PW],
    [`redis://:50%zz${PW.slice(4)}@127.0.0.1:6379`, PW.slice(4)],
  ];
  for (const [url, secret] of cases) {
    const err = await rejects(() => createRedisBus({ url, logger: pino({ level: 'silent' }) }), 'INVALID_OPTION', 'invalid Redis URL (url or REDIS_URL)');
    for (let i = 0; i + 4 <= secret.length; i++) assert.not.ok(everything(err).includes(secret.slice(i, i + 4)), `${url}: ${everything(err)}`);
  }
});

if (hasRedisServer()) s.run();
else console.log('SKIPPED secrets: no redis-server on PATH');
