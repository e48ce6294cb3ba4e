// examples/agent-events end to end on SQLite and Redis: the host process runs ChangeDetectionAgent
// and HealthCheck; an injected crash is restarted; a poisoned event becomes a dead letter and, after
// the fix is deployed (a restart with AGENT_EVENTS_FIXED=1), is retried from the CLI; a new agent
// gets the history by replay. On Redis, an entry in the seed's own shape (plain XADD of type,
// source, data as a JSON string, timestamp) is consumed like any event.
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBus } from '../../runtime/config.js';
import { exampleStores } from '../helpers/example.js';
import { startHost } from '../helpers/host.js';
import { waitFor } from '../helpers/index.js';

const AGENTS = 'examples/agent-events/agents.ts';

for (const store of await exampleStores('agent-events')) {
  const s = suite(`agent-events on ${store.name}`);
  s('crash and restart, poisoned event to dead letter, CLI retry after the fix, replay to a new agent', async () => {
    const env: Record<string, string> = { ...store.env, AGENTBUS_REDIS_PREFIX: `ex${Date.now()}:` };
    const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/runtime/cli.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    const bus = await createBus({ logger: pino({ level: 'error' }) }, { ...process.env, ...env });
    const length = async (type: string) => (await bus.stats()).find((t) => t.type === type)?.length ?? 0;
    let host = await startHost(AGENTS, env);

    await bus.publishBatch([
      { type: 'file.changed', data: { path: '/a.txt', size: 10 } },
      { type: 'file.changed', data: { path: '/b.txt', size: 20 } },
      { type: 'file.changed', data: { path: '/poison.bin', size: '30' } },
    ]);
    if (store.name === 'redis') {
      // Seed 003's producer, verbatim in shape: XADD events:<type> type source data(JSON) timestamp.
      const raw = new Redis(env.REDIS_URL);
      await raw.xadd(`${env.AGENTBUS_REDIS_PREFIX}file.changed`, '*', 'type', 'file.changed', 'source', 'python-bus', 'data', JSON.stringify({ path: '/py.txt', size: 5 }), 'timestamp', '2026-11-22T10:00:00');
      raw.disconnect();
    }
    const good = store.name === 'redis' ? 3 : 2;
    await waitFor('good changes detected', async () => (await length('change.detected')) === good);

    await bus.publish('health.check', { crash: true });
    await waitFor('HealthCheck restarted', async () => {
      const st = (await (await fetch(`${host.url}/status`)).json()) as { agents: { agent: string; state: string; restarts: number }[] };
      const hc = st.agents.find((a) => a.agent === 'HealthCheck')!;
      return hc.restarts === 1 && hc.state === 'running';
    });
    assert.ok(host.out.some((l) => l.includes('agent HealthCheck: running -> crashing') && l.includes('injected crash')));
    await bus.publish('health.check', {});
    await waitFor('health reported by the new instance', async () => (await length('health.reported')) === 1);

    await waitFor('the poisoned event is a dead letter', async () => (await bus.deadLetters.list({ group: 'ChangeDetectionAgent' })).length === 1);
    const ls = cli('dlq', 'ls', '--group', 'ChangeDetectionAgent', '--json');
    const [dl] = JSON.parse(ls.stdout) as { id: string; attempts: number; reason: string; error: string; event: { data: { path: string } } }[];
    assert.equal([dl.event.data.path, dl.attempts, dl.reason], ['/poison.bin', 3, 'failed']);
    assert.match(dl.error, /size of \/poison.bin is not a number/);

    // Deploy the fix, then retry from the CLI.
    host.proc.kill('SIGTERM');
    assert.is(await host.exited, 0);
    host = await startHost(AGENTS, { ...env, AGENT_EVENTS_FIXED: '1' });
    const retry = cli('dlq', 'retry', dl.id);
    assert.is(retry.status, 0, retry.stderr);
    await waitFor('the retried event handled', async () => (await length('change.detected')) === good + 1);
    assert.equal(await bus.deadLetters.list({ group: 'ChangeDetectionAgent' }), []);
    host.proc.kill('SIGTERM');
    assert.is(await host.exited, 0);

    const replay = cli('replay', '--agent', 'ChangeAuditor', '--agents', 'examples/agent-events/auditor.ts', '--json');
    assert.is(replay.status, 0, replay.stderr);
    assert.equal(JSON.parse(replay.stdout), { handled: good + 1, failed: [], published: { count: 0, stored: false, events: [] } });
    await bus.close();
  });
  s.run();
}
