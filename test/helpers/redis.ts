import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { pino } from 'pino';
import { suite } from 'uvu';
import { RedisDriver } from '../../adapters/redis/driver.js';
import { Keys } from '../../adapters/redis/keys.js';
import { defineAllScripts } from '../../adapters/redis/scripts/index.js';
import type { StateStore } from '../../bus/state.js';

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, or SIGKILL when `hard`). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and folder (an AOF file survives). */
  start(): Promise<void>;
  /** SIGSTOP: the server keeps its connections open and answers nothing (until resume). */
  pause(): void;
  /** SIGCONT after pause. */
  resume(): void;
}

export const hasRedisServer = () => spawnSync('redis-server', ['--version']).status === 0;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Servers still running when the test process exits are killed then (one listener for all). */
const servers = new Set<() => void>();
process.once('exit', () => {
  for (const kill of servers) kill();
});

/** Starts a real redis-server on a free loopback port; `args` are extra server arguments. */
export async function startRedisServer(args: string[] = [], opts: { password?: string; scheme?: string; port?: number } = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-redis-'));
  let proc: ChildProcess | null = null;
  const auth = opts.password ? `:${opts.password}@` : '';
  const server: RedisServer = {
    url: `${opts.scheme ?? 'redis'}://${auth}127.0.0.1:${port}`,
    port,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...args], { stdio: 'ignore' });
      proc.unref(); // the test process exits when its tests end; the exit hook below stops the server
      return waitForPort(port, opts.scheme !== 'rediss');
    },
    pause() {
      proc?.kill('SIGSTOP');
    },
    resume() {
      proc?.kill('SIGCONT');
    },
    async stop(hard = false) {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return; // a SIGKILLed process has no exit code
      p.ref(); // unref'd while running; waiting for its exit must keep this process alive
      await new Promise((r) => {
        p.once('exit', r);
        p.kill(hard ? 'SIGKILL' : 'SIGTERM');
      });
    },
  };
  await server.start();
  servers.add(() => proc?.kill('SIGKILL'));
  return server;
}

/** Waits until the port accepts connections and, over plain TCP, answers PING (NOAUTH counts: it is up). */
async function waitForPort(port: number, ping: boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const up = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      const done = (ok: boolean) => (sock.destroy(), resolve(ok));
      sock.once('error', () => done(false));
      sock.once('connect', () => (ping ? sock.write('PING\r\n') : done(true)));
      sock.once('data', (d) => done(/^[+-]/.test(d.toString()) && !d.toString().startsWith('-LOADING')));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on ${port} did not start`);
}

/**
 * The Redis a test file uses: `REDIS_URL` if set, else a redis-server it starts. With neither, the
 * file registers one skipped test saying so, unless AGENTBUS_REQUIRE_REDIS=1, which makes it fail.
 */
export async function redisForTests(what: string, needOwnServer = false): Promise<{ url: string; server: RedisServer | null } | null> {
  if (!needOwnServer && process.env.REDIS_URL) return { url: process.env.REDIS_URL, server: null };
  if (hasRedisServer()) {
    const server = await startRedisServer();
    return { url: server.url, server };
  }
  const why = `${what}: no redis-server on PATH${needOwnServer ? '' : ' and no REDIS_URL'}`;
  if (process.env.AGENTBUS_REQUIRE_REDIS === '1') throw new Error(`${why} (AGENTBUS_REQUIRE_REDIS=1)`);
  const t = suite(what);
  t.skip(why, () => {});
  t.run();
  console.log(`SKIPPED ${why}`);
  return null;
}

/**
 * Starts a real Redis Cluster of `masters` nodes (no replicas) on free loopback ports, joined with
 * `redis-cli --cluster create`, and waits until every node reports cluster_state:ok.
 */
export async function startRedisCluster(masters = 3): Promise<{ nodes: { host: string; port: number }[]; stop(): Promise<void> }> {
  const servers: RedisServer[] = [];
  for (let i = 0; i < masters; i++) {
    servers.push(await startRedisServer(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '5000']));
  }
  const addrs = servers.map((s) => `127.0.0.1:${s.port}`);
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  const end = Date.now() + 20_000;
  for (const s of servers) {
    for (;;) {
      const info = spawnSync('redis-cli', ['-p', String(s.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
      if (info.includes('cluster_state:ok')) break;
      if (Date.now() > end) throw new Error(`cluster node ${s.port} not ok: ${info}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })), stop: async () => void (await Promise.all(servers.map((s) => s.stop()))) };
}

export interface SentinelSetup {
  /** The master's name the sentinels monitor. */
  name: string;
  master: RedisServer;
  replica: RedisServer;
  /** The sentinels' `host:port`, as REDIS_SENTINELS takes them. */
  sentinels: string[];
  /** The port the sentinels name as the master now (the first sentinel that answers). */
  masterPort(): Promise<number>;
  /**
   * True once every sentinel names `port` as the master and none is still failing over: only
   * then may a dead master come back. Back earlier, while one sentinel still holds the old
   * configuration, that sentinel can make the promoted replica a replica of the returning master,
   * and a master restarted without persistence is empty: the full sync wipes the promoted one
   * (Redis' replication docs, "Safety of replication when master has persistence turned off").
   */
  settledOn(port: number): Promise<boolean>;
  /** SIGSTOPs every sentinel: connections to them open but nothing answers (a partition, a hung host). */
  pause(): void;
  /** SIGCONTs them. */
  resume(): void;
  stop(): Promise<void>;
}

const cli = (port: number, args: string[], password?: string) =>
  spawnSync('redis-cli', ['-p', String(port), ...(password ? ['--no-auth-warning', '-a', password] : []), ...args], { encoding: 'utf8' }).stdout.trim();

/**
 * One master, one replica and three sentinels (quorum 2, down after 1 s) on free loopback ports, as
 * real processes; resolves once every sentinel sees the replica and the two other sentinels, so a
 * failover can start as soon as the master dies. `password`: the master's and replica's
 * requirepass; `sentinelPassword`: the sentinels' own. Sentinels run as `redis-sentinel` (Debian's
 * package), else as `redis-server --sentinel`.
 */
export async function startRedisSentinels(opts: { password?: string; sentinelPassword?: string } = {}): Promise<SentinelSetup> {
  const name = `m${randomBytes(3).toString('hex')}`;
  const auth = opts.password ? ['--requirepass', opts.password, '--masterauth', opts.password] : [];
  // No 5 s wait before the replica's first full sync (Redis 7's default for diskless sync).
  const master = await startRedisServer([...auth, '--repl-diskless-sync-delay', '0']);
  const replica = await startRedisServer([...auth, '--replicaof', '127.0.0.1', String(master.port)]);
  const useSentinelBin = spawnSync('redis-sentinel', ['--version']).status === 0;
  const ports: number[] = [];
  const procs: ChildProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'agentbus-sentinel-'));
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        ...(opts.password ? [`sentinel auth-pass ${name} ${opts.password}`] : []),
        ...(opts.sentinelPassword ? [`requirepass ${opts.sentinelPassword}`, `sentinel sentinel-pass ${opts.sentinelPassword}`] : []),
        '',
      ].join('\n'),
    );
    const proc = useSentinelBin ? spawn('redis-sentinel', [conf], { stdio: 'ignore' }) : spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    proc.unref();
    servers.add(() => proc.kill('SIGKILL'));
    procs.push(proc);
    ports.push(port);
  }
  for (const port of ports) await waitForPort(port, !opts.sentinelPassword);
  const end = Date.now() + 30_000;
  while (!cli(replica.port, ['info', 'replication'], opts.password).includes('master_link_status:up')) {
    if (Date.now() > end) throw new Error(`replica ${replica.port} never synced with master ${master.port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const port of ports) {
    for (;;) {
      const info = cli(port, ['sentinel', 'master', name], opts.sentinelPassword);
      const field = (k: string) => Number(new RegExp(`^${k}\\n(\\d+)$`, 'm').exec(info)?.[1] ?? -1);
      if (field('num-slaves') === 1 && field('num-other-sentinels') === 2) break;
      if (Date.now() > end) throw new Error(`sentinel ${port} does not see the replica and the other sentinels:\n${info}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    name,
    master,
    replica,
    sentinels: ports.map((p) => `127.0.0.1:${p}`),
    async masterPort() {
      for (const port of ports) {
        const addr = cli(port, ['sentinel', 'get-master-addr-by-name', name], opts.sentinelPassword).split('\n');
        if (addr.length === 2) return Number(addr[1]);
      }
      return -1;
    },
    async settledOn(port: number) {
      return ports.every((p) => {
        const info = cli(p, ['sentinel', 'master', name], opts.sentinelPassword);
        return new RegExp(`^port\\n${port}$`, 'm').test(info) && /^flags\nmaster$/m.test(info);
      });
    },
    pause() {
      for (const p of procs) p.kill('SIGSTOP');
    },
    resume() {
      for (const p of procs) p.kill('SIGCONT');
    },
    async stop() {
      for (const p of procs) p.kill('SIGKILL');
      await Promise.all([master.stop(true), replica.stop(true)]);
    },
  };
}

/**
 * Counts the commands that name a due key of `prefix` (a topic's `:due` or `:due-names`, the
 * `:due-topics` set), watched with MONITOR on each node of `urls`. `count()` first waits until each
 * node's feed passed a marker sent after it was called, so every command run before it is counted.
 */
export async function countDueCommands(urls: string[], prefix: string): Promise<{ count(): Promise<number>; stop(): Promise<void> }> {
  let n = 0;
  let marks = 0;
  const seen = new Set<string>();
  const isDueKey = (a: string) => a.includes(prefix) && /:due(-names|-topics)?$/.test(a);
  const nodes = await Promise.all(
    urls.map(async (url) => {
      const raw = new Redis(url);
      const monitor = await raw.monitor();
      monitor.on('monitor', (_time: string, args: string[]) => {
        if (args[0]?.toLowerCase() === 'echo' && args[1]?.startsWith('mark:')) seen.add(args[1]);
        else if (args.some(isDueKey)) n++;
      });
      return { raw, monitor, cmd: new Redis(url) };
    }),
  );
  return {
    async count() {
      const mark = `mark:${prefix}:${++marks}`;
      const sent = nodes.map((_, i) => `${mark}:${i}`);
      await Promise.all(nodes.map((node, i) => node.cmd.echo(sent[i])));
      const end = Date.now() + 10_000;
      while (!sent.every((m) => seen.has(m))) {
        if (Date.now() > end) throw new Error(`MONITOR never showed ${mark}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return n;
    },
    async stop() {
      for (const node of nodes) {
        node.monitor.disconnect();
        node.raw.disconnect();
        node.cmd.disconnect();
      }
    },
  };
}

/**
 * The Redis keyed-state store (adapters/redis/state.ts) on the server at `url` or the cluster of
 * `nodes`, under the bus' default prefix, through a driver and connection of its own (conformance's
 * `stateStore` hook).
 */
export async function redisStateStore(where: { url: string } | { nodes: { host: string; port: number }[] }): Promise<{ store: StateStore; close(): Promise<void> }> {
  const client = 'url' in where ? new Redis(where.url) : new Cluster(where.nodes);
  defineAllScripts(client);
  const driver = new RedisDriver(client, new Keys('events:'), pino({ level: 'silent' }), false, () => ({}));
  return {
    store: driver.state,
    close: async () => {
      await driver.close();
      client.disconnect();
    },
  };
}
