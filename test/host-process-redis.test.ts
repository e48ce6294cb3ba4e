import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hostProcessSuite } from './host-process.js';
import { startHost } from './helpers/host.js';
import { waitFor } from './helpers/index.js';
import { redisForTests, startRedisServer } from './helpers/redis.js';

const redis = await redisForTests('host processes on redis');
if (redis) {
  hostProcessSuite('redis', { AGENTBUS_ADAPTER: 'redis', REDIS_URL: redis.url });

  const s = suite('host readiness follows redis');
  s('/readyz turns 503 naming the store while Redis is down, and 200 again when it is back; /healthz stays 200', async () => {
    const server = await startRedisServer(['--appendonly', 'yes']);
    const host = await startHost('test/fixtures/agents/work.ts', { AGENTBUS_ADAPTER: 'redis', REDIS_URL: server.url, WORK_LOG: '/dev/null' });
    const ready = async () => {
      const r = await fetch(`${host.url}/readyz`);
      return { status: r.status, text: await r.text() };
    };
    assert.is((await ready()).status, 200);
    await server.stop();
    await waitFor('not ready', async () => (await ready()).status === 503, 10_000, 200);
    assert.match((await ready()).text, /not ready: store unreachable/);
    assert.is((await fetch(`${host.url}/healthz`)).status, 200);
    await server.start();
    await waitFor('ready again', async () => (await ready()).status === 200, 15_000, 200);
    host.proc.kill('SIGTERM');
    assert.is(await host.exited, 0);
    await server.stop();
  });
  s.run();
}
