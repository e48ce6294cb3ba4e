import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import { Redis } from 'ioredis';

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, or SIGKILL when `hard`). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and folder (an AOF file survives). */
  start(): Promise<void>;
}

export const hasRedisServer = () => spawnSync('redis-server', ['--version']).status === 0;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

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
      if (opts.scheme === 'rediss') return waitForPort(port);
      const probe = new Redis(port, '127.0.0.1', { password: opts.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => {}); // refused until the server listens: expected, retried below
      const end = Date.now() + 10_000;
      for (;;) {
        try {
          await probe.connect();
          await probe.ping();
          probe.disconnect();
          return;
        } catch (err) {
          if (Date.now() > end) throw new Error(`redis-server on ${port} did not start: ${(err as Error).message}`);
          probe.disconnect();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
    async stop(hard = false) {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      await new Promise((r) => {
        p.once('exit', r);
        p.kill(hard ? 'SIGKILL' : 'SIGTERM');
      });
    },
  };
  await server.start();
  process.once('exit', () => proc?.kill('SIGKILL'));
  return server;
}

async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((r) => connect(port, '127.0.0.1').once('connect', function (this: import('node:net').Socket) { this.destroy(); r(true); }).once('error', () => r(false)));
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
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
