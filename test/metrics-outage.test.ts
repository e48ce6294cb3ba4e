// /metrics while the Redis store is down: a real redis-server this file starts, stops and restarts.
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentHost, BaseAgent, serveHttp } from '../index.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { uniq, waitFor } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const redis = await redisForTests('metrics under a store outage', true);

if (redis) {
  const server = redis.server!;

  test('/metrics answers within ~1 s while Redis is down: process metrics kept, store series marked stale, fresh again after restart', async () => {
    const logger = pino({ level: 'silent' });
    const bus = await createRedisBus({ url: server.url, logger });
    const type = uniq('outage');
    class Watcher extends BaseAgent {
      static subscriptions = [type];
      handle() {}
    }
    let reads = 0;
    const stats = bus.stats.bind(bus);
    bus.stats = () => (reads++, stats());
    const host = new AgentHost({ bus, agents: [Watcher], logger });
    await host.start();
    const http = await serveHttp(host, 0);
    const scrape = async () => {
      const t = Date.now();
      const text = await (await fetch(`${http.url}/metrics`)).text();
      const metric = (name: string) => text.split('\n').find((l) => l.startsWith(name))?.split(' ').pop();
      return { ms: Date.now() - t, text, metric };
    };

    await bus.publish(type, {});
    let s = await scrape();
    assert.is(reads, 1, 'one scrape reads stats once for all store gauges');
    assert.is(s.metric('agentbus_store_up'), '1');
    assert.ok(Number(s.metric('agentbus_store_stats_age_seconds')) < 1, s.text);
    assert.ok(s.metric(`agentbus_group_lag{type="${type}",group="Watcher"}`) !== undefined, 'store series while up');

    await server.stop();
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 1100)); // past the 1 s a scrape's values are reused
      s = await scrape();
      assert.ok(s.ms < 2500, `scrape took ${s.ms} ms while the store was down`);
      assert.ok(s.text.includes('agentbus_process_resident_memory_bytes'), 'process metrics kept');
      assert.ok(s.text.includes('agentbus_agent_state{agent="Watcher",state="running"} 1'), 'host metrics kept');
      assert.is(s.metric('agentbus_store_up'), '0');
      assert.ok(s.metric(`agentbus_group_lag{type="${type}",group="Watcher"}`) !== undefined, 'the last store values are served');
    }
    assert.ok(Number(s.metric('agentbus_store_stats_age_seconds')) >= 1, `age ${s.metric('agentbus_store_stats_age_seconds')}`);
    assert.ok(reads <= 2, `${reads} stats reads: a scrape during the outage joins the read in flight`);

    await server.start();
    await waitFor('fresh store values after the restart', async () => {
      const r = await scrape();
      return r.metric('agentbus_store_up') === '1' && Number(r.metric('agentbus_store_stats_age_seconds')) < 1;
    }, 30_000, 200);
    http.server.close();
    await host.stop();
    await bus.close();
  });

  test.run();
}
