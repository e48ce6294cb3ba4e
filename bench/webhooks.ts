// Seed 004's success criteria against examples/webhooks, in one process: the host with WebhookApi
// and WebhookWorker (healthy downstream, 0 ms) in this process; a load generator in another
// process posts from 64 keep-alive connections and receives every processed event over the WebSocket.   BENCH_ONLY=webhooks npm run bench
// Measures ingest throughput (POST -> 202) and end to end (POST -> WebSocket push), and the latency
// of that whole path at a fixed 1,000/s offered load. Store: SQLite, and Redis when redis-server exists.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { pino } from 'pino';
import { createBus } from '../runtime/config.js';
import { AgentHost } from '../runtime/host.js';
import { freePort, hasRedisServer, startRedisServer } from '../test/helpers/redis.js';
import { worker } from './util.js';

const N = Number(process.env.BENCH_WEBHOOKS_N || 20_000);

async function run(store: string, env: Record<string, string>): Promise<string> {
  const port = await freePort();
  Object.assign(process.env, { WEBHOOK_PORT: String(port), WEBHOOK_DOWNSTREAM_MS: '0', WEBHOOK_FAILING_TOOLS: '' });
  const { WebhookApi, WebhookWorker } = await import('../examples/webhooks/agents.js');
  const silent = pino({ level: 'silent' });
  const bus = await createBus({ logger: silent }, { ...process.env, ...env });
  const host = new AgentHost({ bus, agents: [WebhookApi, WebhookWorker], logger: silent, catchUncaught: false });
  await host.start();
  // The client runs in its own process (see webhooks-client.ts): saturating, then paced at 1,000/s.
  const [burst] = await worker('webhooks-client.ts', { port, n: N, clients: 64 }).done;
  const [paced] = await worker('webhooks-client.ts', { port, n: 5000, clients: 64, rate: 1000 }).done;
  await host.stop();
  await bus.close();
  return `| ${store} | ${burst.ingest.toLocaleString('en-US')} | ${burst.e2e.toLocaleString('en-US')} | ${paced.p50.toFixed(1)} | ${paced.p99.toFixed(1)} |`;
}

/** The ceiling of the HTTP layer alone on this machine: node:http answering 202 at once, same client. */
async function bareHttp(): Promise<number> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(202, { 'content-type': 'application/json' }).end('{"id":"x"}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const [r] = await worker('webhooks-client.ts', { port: (server.address() as { port: number }).port, n: N, clients: 64, noWs: true }).done;
  server.close();
  return r.ingest;
}

export async function webhooksBench(): Promise<void> {
  const bare = await bareHttp();
  const rows = [await run('SQLite', { AGENTBUS_ADAPTER: 'sqlite', AGENTBUS_SQLITE_PATH: join(mkdtempSync(join(tmpdir(), 'agentbus-bench-wh-')), 'bus.db') })];
  if (hasRedisServer()) {
    const server = await startRedisServer();
    rows.push(await run('Redis', { AGENTBUS_ADAPTER: 'redis', REDIS_URL: server.url }));
    await server.stop();
  }
  console.log(`\n## examples/webhooks against seed 004's criteria (${N.toLocaleString('en-US')} webhooks from 64 keep-alive connections in a second process; latency: 5,000 at 1,000/s)\n`);
  console.log('| store | ingest POST -> 202 /s | end to end POST -> WebSocket /s | p50 ms at 1,000/s | p99 ms at 1,000/s |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  console.log(`\nThe same client against a bare node:http server that answers 202 at once: ${bare.toLocaleString('en-US')} POST/s (the HTTP layer's ceiling here).`);
  console.log('\nSeed 004 asks for 10,000 events/s per instance and p99 < 100 ms.');
}
