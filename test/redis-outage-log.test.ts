// What a Redis outage puts in the log: a real redis-server (with a password) this file starts, stops
// for about 5 s and restarts while a host runs on it.
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentHost, BaseAgent } from '../index.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { sleep, uniq, waitFor } from './helpers/index.js';
import { redisForTests, startRedisServer } from './helpers/redis.js';

const available = await redisForTests('redis outage logging', true);

if (available) {
  await available.server!.stop();
  const PASSWORD = 'outage-Secret-7f3a';
  const server = await startRedisServer(['--requirepass', PASSWORD], { password: PASSWORD });

  test('an outage logs one warning per connection and one line per connection when it is back; the start-up line names the store; no password anywhere', async () => {
    const text: string[] = [];
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void (text.push(s), lines.push(JSON.parse(s))) });
    const bus = await createRedisBus({ url: server.url, logger });
    const type = uniq('outage');
    const got: unknown[] = [];
    class Watcher extends BaseAgent {
      static subscriptions = [type];
      static options = { from: 'earliest' as const };
      handle(e: { data: unknown }) {
        got.push(e.data);
      }
    }
    const host = new AgentHost({ bus, agents: [Watcher], logger });
    await host.start();
    try {
      await bus.publish(type, 1);
      await waitFor('handled before the outage', () => got.length === 1);
      assert.ok(lines.some((l) => l.msg === `store: Redis at redis://127.0.0.1:${server.port}/0` && l.level === 30), 'the start-up line names the store');

      const outageFrom = lines.length;
      await server.stop();
      await sleep(5000);
      await server.start();
      const during = () => lines.slice(outageFrom);
      const key = (l: Record<string, unknown>) => `${l.connection}${l.consumer ? ` ${l.consumer}` : ''}`;
      const back = () => during().filter((l) => /^redis (reader )?connection back after \d+\.\d s$/.test(String(l.msg)));
      await waitFor('both connections back', () => new Set(back().map(key)).size === 2, 30_000, 100);
      await bus.publish(type, 2);
      await waitFor('handled after the outage', () => got.length === 2, 30_000, 100);

      const warnings = during().filter((l) => /^redis (reader )?connection error/.test(String(l.msg)));
      const perConnection = new Map<string, number>();
      for (const l of warnings) perConnection.set(key(l), (perConnection.get(key(l)) ?? 0) + 1);
      assert.equal([...perConnection.keys()].sort(), ['command', `reader ${host.hostId}/Watcher/1`], JSON.stringify(warnings));
      assert.ok([...perConnection.values()].every((n) => n === 1), `warnings per connection: ${JSON.stringify([...perConnection])}`);
      assert.ok(warnings.every((l) => l.level === 40 && l.redis === `redis://127.0.0.1:${server.port}/0` && typeof l.err === 'string'), JSON.stringify(warnings));
      assert.equal(back().map(key).sort(), [...perConnection.keys()].sort(), 'one "back" line per connection that warned');
      assert.ok(back().every((l) => l.level === 30 && typeof l.downMs === 'number'), JSON.stringify(back()));
      const noisy = during().filter((l) => Number(l.level) >= 40);
      assert.ok(noisy.length <= 10, `${noisy.length} warning and error lines during a 5 s outage:\n${noisy.map((l) => l.msg).join('\n')}`);
      assert.not.ok(text.join('').includes(PASSWORD), 'the password reached the log');
    } finally {
      // A failed assertion must not leave the file waiting on a live host.
      await host.stop();
      await bus.close();
    }
  });

  test.run();
}
