// Round trips of the Redis publish path, counted through a TCP proxy in front of Redis that holds
// what the bus sends for 20 ms and forwards it as one flush: commands written together (a pipeline,
// Promise.all) are one flush; each command that waits for an earlier reply is another.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { uniq } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const quiet = pino({ level: 'silent' });
const HOLD_MS = 20;

/** A proxy to `target` (host, port) counting the bursts the clients send (see the file's comment). */
async function burstProxy(target: { host: string; port: number }): Promise<{ url: string; bursts(): number; close(): Promise<void> }> {
  let bursts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let held: Buffer[] = [];
    client.on('data', (chunk) => {
      if (held.length === 0) {
        setTimeout(() => {
          bursts++;
          upstream.write(Buffer.concat(held));
          held = [];
        }, HOLD_MS);
      }
      held.push(chunk);
    });
    upstream.pipe(client);
    const end = () => (client.destroy(), upstream.destroy());
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    bursts: () => bursts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const redis = await redisForTests('redis round trips');
if (redis) {
  const test = suite('redis round trips');
  const u = new URL(redis.url);

  test('a named delayed publish is three round trips when another topic holds names (was five or six, one command after another); the name stays unique', async () => {
    const proxy = await burstProxy({ host: u.hostname, port: Number(u.port) });
    const bus = await createRedisBus({ url: proxy.url, prefix: `${uniq('rt')}:`, logger: quiet, moveDue: false });
    try {
      const [a, b] = [uniq('remind'), uniq('remind')];
      await bus.publish(b, 'on b', { name: 'n', delay: 60_000 });
      const trips: number[] = [];
      for (const i of [1, 2]) {
        const before = proxy.bursts();
        await bus.publish(a, `on a ${i}`, { name: 'n', delay: 60_000, id: `x${i}` });
        trips.push(proxy.bursts() - before);
      }
      // The fewest of two: a timer of the bus (housekeeping, health) may add a burst to one.
      assert.ok(Math.min(...trips) <= 3, `round trips per named publish: ${trips.join(', ')}`);
      const pending = await bus.schedules!.list();
      assert.equal(pending.map((p) => [p.type, p.name, p.event?.data]), [[a, 'n', 'on a 2']]);
    } finally {
      await bus.close();
      await proxy.close();
    }
  });

  test.run();
}
