// The host's metrics of durable time and conversations, scraped from a real host's /metrics on a
// SQLite file and on Redis: a handler that runs past timeoutMs, a delayed event moved by the
// host's bus, and requests (one replied, one timed out whose late reply is dropped and counted).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentHost, BaseAgent, createBus, RequestTimeoutError, type Bus, type CloudEvent } from '../index.js';
import { serveHttp } from '../runtime/http.js';
import { redisForTests } from './helpers/redis.js';
import { sleep, uniq, waitFor } from './helpers/index.js';

const logger = pino({ level: 'silent' });

async function scenario(bus: Bus): Promise<void> {
  const hang = uniq('mt.hang');
  const later = uniq('mt.later');
  const ask = uniq('mt.ask');
  const handled: string[] = [];
  class Hangs extends BaseAgent {
    static subscriptions = [hang];
    static options = { timeoutMs: 150, maxAttempts: 1 };
    async handle() {
      await new Promise(() => {}); // never settles, ignores its signal
    }
  }
  class Later extends BaseAgent {
    static subscriptions = [later];
    handle(e: CloudEvent) {
      handled.push(e.id);
    }
  }
  class Tool extends BaseAgent {
    static subscriptions = [ask];
    static options = { concurrency: 4 };
    async handle(e: CloudEvent<{ slowMs: number }>) {
      await sleep(e.data.slowMs);
      return { done: e.data.slowMs };
    }
  }
  const host = new AgentHost({ bus, agents: [Hangs, Later, Tool], logger, catchUncaught: false });
  await host.start();
  const http = await serveHttp(host, 0);
  /** One sample of the scraped /metrics (0 when the series is absent). */
  const metric = async (series: string) => {
    const text = await (await fetch(`${http.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  };
  try {
    // Timeouts: per agent, at 0 from the start.
    assert.is(await metric('agentbus_handler_timeouts_total{agent="Hangs"}'), 0);
    await bus.publish(hang, {});
    await waitFor('a timeout counted', async () => (await metric('agentbus_handler_timeouts_total{agent="Hangs"}')) === 1);
    assert.is(await metric(`agentbus_events_failed_total{type="${hang}",group="Hangs"}`), 1, 'also counted as failed');
    assert.is(await metric('agentbus_handler_timeouts_total{agent="Later"}'), 0);

    // A delayed event: moved by this host's bus, with its lateness observed.
    const lateBefore = await metric('agentbus_due_lateness_seconds_count');
    assert.is(await metric(`agentbus_due_moved_total{type="${later}"}`), 0);
    await bus.publish(later, {}, { delay: 300 });
    await waitFor('the delayed event handled', () => handled.length === 1);
    await waitFor('the move counted', async () => (await metric(`agentbus_due_moved_total{type="${later}"}`)) === 1);
    assert.is(await metric('agentbus_due_lateness_seconds_count'), lateBefore + 1);
    assert.ok((await metric('agentbus_due_lateness_seconds_bucket{le="+Inf"}')) >= 1);

    // Requests: one times out and its late reply is dropped and counted; the next is replied.
    const dropped = await metric('agentbus_request_replies_dropped_total');
    const err = await bus.request(ask, { slowMs: 600 }, { timeoutMs: 100 }).then(() => null, (x: unknown) => x);
    assert.ok(err instanceof RequestTimeoutError, `got ${String(err)}`);
    assert.is(await metric(`agentbus_request_outcomes_total{type="${ask}",outcome="timed_out"}`), 1);
    await waitFor('the late reply dropped and counted', async () => (await metric('agentbus_request_replies_dropped_total')) === dropped + 1, 15_000);
    assert.equal(await bus.request(ask, { slowMs: 0 }, { timeoutMs: 15_000 }), { done: 0 });
    assert.is(await metric(`agentbus_requests_sent_total{type="${ask}"}`), 2);
    assert.is(await metric(`agentbus_request_outcomes_total{type="${ask}",outcome="replied"}`), 1);
    assert.is(await metric(`agentbus_request_duration_seconds_count{type="${ask}"}`), 1);
    assert.is(await metric(`agentbus_request_duration_seconds_bucket{le="+Inf",type="${ask}"}`), 1);
  } finally {
    await http.close();
    await host.stop();
  }
  // Stopped: the host no longer watches the bus.
  await bus.request(ask, { slowMs: 0 }, { timeoutMs: 200 }).catch(() => {});
  const text = await host.metrics.registry.metrics();
  assert.ok(text.includes(`agentbus_requests_sent_total{type="${ask}"} 2`), 'a request after stop is not counted');
}

test('sqlite file: timeouts, delayed events moved and their lateness, requests, late replies dropped', async () => {
  const bus = await createBus({ adapter: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'agentbus-mt-')), 'bus.db'), logger });
  try {
    await scenario(bus);
  } finally {
    await bus.close();
  }
});

const redis = await redisForTests('metrics of time and requests on redis');
if (redis) {
  test('redis: timeouts, delayed events moved and their lateness, requests, late replies dropped', async () => {
    const bus = await createBus({ adapter: 'redis', url: redis.url, logger });
    try {
      await scenario(bus);
    } finally {
      await bus.close();
      await redis.server?.stop();
    }
  });
}

test.run();
