// examples/webhooks end to end on SQLite and Redis: the same webhook posted 3 times is processed
// once; a failing tool trips its breaker (3 slow calls, then fail-fast) while the other tools'
// webhooks go through at full speed; processed events reach a WebSocket client; lag is on /metrics.
import { WebSocket } from 'ws';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { exampleStores } from '../helpers/example.js';
import { startHost } from '../helpers/host.js';
import { freePort } from '../helpers/redis.js';
import { waitFor } from '../helpers/index.js';

for (const store of await exampleStores('webhooks')) {
  const s = suite(`webhooks on ${store.name}`);
  s('dedup, per-tool breaker, retries to dead letters, WebSocket push, lag metric', async () => {
    const port = await freePort();
    const env: Record<string, string> = {
      ...store.env,
      AGENTBUS_REDIS_PREFIX: `wh${Date.now()}:`,
      WEBHOOK_PORT: String(port),
      WEBHOOK_FAILING_TOOLS: 'jira',
      WEBHOOK_FAIL_MS: '400',
      WEBHOOK_BREAKER_FAILURES: '3',
      WEBHOOK_BREAKER_RESET_MS: '60000',
      WEBHOOK_MAX_ATTEMPTS: '3',
      WEBHOOK_BACKOFF_MS: '50',
    };
    const host = await startHost('examples/webhooks/agents.ts', env);
    const api = `http://127.0.0.1:${port}`;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const pushed: { id: string; tool: string; ms: number }[] = [];
    ws.on('message', (m) => pushed.push(JSON.parse(String(m))));
    await new Promise((r) => ws.once('open', r));
    const post = (tool: string, body: unknown, type = 'issue.updated') =>
      fetch(`${api}/webhooks/${tool}`, { method: 'POST', headers: { 'x-event-type': type }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as { id: string } }));

    // The same delivery three times: one event, processed once.
    const same = await Promise.all([1, 2, 3].map(() => post('github', { action: 'opened', number: 42 })));
    assert.equal(same.map((r) => r.status), [202, 202, 202]);
    assert.is(new Set(same.map((r) => r.body.id)).size, 1);
    assert.match(same[0].body.id, /^github:issue.updated:[0-9a-f]{64}$/);

    // jira is down; slack and github are fine.
    const t0 = Date.now();
    const jira = await Promise.all([1, 2, 3, 4, 5].map((n) => post('jira', { n })));
    const others = await Promise.all(Array.from({ length: 20 }, (_, n) => post(n % 2 ? 'slack' : 'github', { n })));
    const otherIds = new Set(others.map((r) => r.body.id));
    await waitFor('the healthy tools processed', () => [...otherIds].every((id) => pushed.some((p) => p.id === id)), 10_000);
    const healthyMs = Date.now() - t0;
    // The breaker: 5 jira events x 3 attempts would be 15 slow calls; it allows 3, then fails fast.
    await waitFor('jira events dead-lettered', () => host.out.filter((l) => l.includes('"msg":"dead letter"') && l.includes('jira')).length === 5, 20_000);
    const jiraCalls = host.out.filter((l) => l.includes('downstream call failed')).length;
    assert.is(jiraCalls, 3, 'only the calls before the circuit opened reached jira');
    assert.ok(healthyMs < 3000, `healthy tools took ${healthyMs} ms while jira was down`);
    assert.ok(host.out.some((l) => l.includes('CircuitOpenError') || l.includes('circuit for jira is open')), 'fail-fast errors recorded');
    assert.equal(jira.map((r) => r.status), [202, 202, 202, 202, 202]);

    // Processed once: the github duplicate reached the WebSocket once.
    await waitFor('the duplicate processed', () => pushed.some((p) => p.id === same[0].body.id));
    assert.is(pushed.filter((p) => p.id === same[0].body.id).length, 1);
    assert.is(pushed.filter((p) => p.tool === 'jira').length, 0);

    const metrics = await (await fetch(`${host.url}/metrics`)).text();
    assert.match(metrics, /agentbus_group_lag\{type="webhook.received",group="WebhookWorker"\} 0/);
    assert.match(metrics, /agentbus_events_dead_lettered_total\{type="webhook.received",group="WebhookWorker",reason="failed"\} 5/);
    assert.is((await post('github', 'not json at all' as unknown as object)).status, 202, 'a JSON string is still JSON');
    const bad = await fetch(`${api}/webhooks/github`, { method: 'POST', body: '{oops' });
    assert.is(bad.status, 400);
    ws.close();
    host.proc.kill('SIGTERM');
    assert.is(await host.exited, 0);
  });
  s.run();
}
