// `agentbus start` on Redis told to stop (SIGTERM) while Redis is down: a real host process (the
// built CLI), a real redis-server killed under it. The host exits 0 within its drain plus the 5 s
// its subscriptions give their store calls, and loses nothing: a host started once Redis is back
// handles again the events whose acknowledgements were given up.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createRedisBus } from '../adapters/redis/index.js';
import { startHost, workLog } from './helpers/host.js';
import { sleep, uniq, waitFor } from './helpers/index.js';
import { hasRedisServer, startRedisServer } from './helpers/redis.js';

const down = suite('SIGTERM while Redis is down');
if (!hasRedisServer()) down.skip('no redis-server on PATH', () => {});
else {
  for (const spool of [false, true]) {
    down(`${spool ? 'with a spool: ' : ''}Redis killed with 10 handlers in flight, then SIGTERM: the host exits 0 within the drain + 5 s (was 75 s and more); once Redis is back a new host handles the events not acknowledged`, async () => {
      const server = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'always']);
      const dir = mkdtempSync(join(tmpdir(), 'agentbus-sigterm-outage-'));
      const type = uniq('work.outage');
      const logPath = join(dir, 'work.log');
      const b = await createRedisBus({ url: server.url, logger: pino({ level: 'error' }), spool: false });
      const ids = await b.publishBatch(Array.from({ length: 10 }, (_, i) => ({ type, data: { i } })));
      await b.close();
      const env = {
        AGENTBUS_ADAPTER: 'redis', REDIS_URL: server.url, WORK_TYPE: type, WORK_LOG: logPath, WORK_CONCURRENCY: '10', WORK_CLAIM_MS: '1000',
        ...(spool ? { AGENTBUS_SPOOL_PATH: join(dir, 'spool.db') } : {}),
      };
      const host = await startHost('test/fixtures/agents/work.ts', { ...env, WORK_HANDLER_MS: '2000' });
      await waitFor('10 handlers in flight', () => workLog(logPath).starts.size === 10, 20_000);
      await server.stop(true);
      await sleep(300);
      const t0 = Date.now();
      host.proc.kill('SIGTERM');
      // The handlers finish (2 s, inside drainTimeoutMs), their acknowledgements are given up after 5 s.
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([host.exited, new Promise((r) => (timer = setTimeout(() => r('still running after 25 s'), 25_000)))]);
      clearTimeout(timer);
      const took = Date.now() - t0;
      assert.is(code, 0, host.out.join('\n'));
      assert.ok(took < 25_000, `took ${took} ms`);
      assert.ok(host.out.some((l) => l.includes('subscription closed without waiting for the store')), host.out.join('\n'));
      assert.is(workLog(logPath).dones.size, 10, 'the handlers in flight finished');

      await server.start();
      const again = await startHost('test/fixtures/agents/work.ts', { ...env, WORK_HANDLER_MS: '0' });
      await waitFor('every event handled again by the new host (their acknowledgements were given up)', () => ids.every((id) => workLog(logPath).dones.get(id) === 2), 20_000, 100);
      again.proc.kill('SIGTERM');
      assert.is(await again.exited, 0);
      await server.stop();
    });
  }
}
down.run();
