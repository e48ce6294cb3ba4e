// examples/device-cache end to end: the host process with DeviceCache, on SQLite and on Redis.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBus } from '../../runtime/config.js';
import { exampleStores } from '../helpers/example.js';
import { startHost } from '../helpers/host.js';
import { freePort } from '../helpers/redis.js';
import { sleep, uniq, waitFor } from '../helpers/index.js';

for (const store of await exampleStores('device-cache')) {
  const s = suite(`device-cache on ${store.name}`);
  s('latest metadata per device, older events never overwrite newer, TTL expiry, bulk lookup', async () => {
    const port = await freePort();
    const env = { ...store.env, DEVICE_CACHE_PORT: String(port), DEVICE_CACHE_TTL: '2', DEVICE_CACHE_DB: join(mkdtempSync(join(tmpdir(), 'dc-')), 'cache.db') };
    const host = await startHost('examples/device-cache/agents.ts', env);
    const bus = await createBus({ logger: pino({ level: 'warn' }) }, { ...process.env, ...env });
    const api = `http://127.0.0.1:${port}`;
    const [d1, d2, d3] = [uniq('dev'), uniq('dev'), uniq('dev')];
    const md = (name: string) => ({ datatype_id: '7', datatype_name: name, datatype_unit: 'C', persist: true });
    const at = (s: number) => new Date(Date.UTC(2026, 10, 22, 10, 0, s)).toISOString();
    await bus.publishBatch([
      { type: 'device.validated', subject: d1, data: { device_id: d1, timestamp: at(10), metadata: md('temperature v2') } },
      { type: 'device.validated', subject: d2, data: { device_id: d2, timestamp: at(5), metadata: md('humidity') } },
      // Arrives after the newer one: must not overwrite it.
      { type: 'device.validated', subject: d1, data: { device_id: d1, timestamp: at(3), metadata: md('temperature v1 (late)') } },
    ]);
    await waitFor('both devices cached', async () => (await fetch(`${api}/devices/${d2}`)).status === 200);
    await sleep(300); // the late event has been handled too (same subject, in order, after d1's newer one)
    const r1 = (await (await fetch(`${api}/devices/${d1}`)).json()) as { datatype_name: string; last_updated: number };
    assert.is(r1.datatype_name, 'temperature v2');
    assert.is(r1.last_updated, Date.parse(at(10)));
    const bulk = (await (await fetch(`${api}/devices/lookup`, { method: 'POST', body: JSON.stringify({ ids: [d1, d2, d3] }) })).json()) as Record<string, { datatype_name: string } | null>;
    assert.equal([bulk[d1]?.datatype_name, bulk[d2]?.datatype_name, bulk[d3]], ['temperature v2', 'humidity', null]);
    assert.is((await fetch(`${api}/devices/lookup`, { method: 'POST', body: '{"ids": 3}' })).status, 400);
    assert.is((await fetch(`${api}/devices/${d3}`)).status, 404);
    await waitFor('expired after the 2 s TTL', async () => (await fetch(`${api}/devices/${d2}`)).status === 404, 5000, 200);
    host.proc.kill('SIGTERM');
    assert.is(await host.exited, 0);
    await bus.close();
  });
  s.run();
}
