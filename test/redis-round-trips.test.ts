// Round trips of the Redis publish path, counted through a TCP proxy in front of Redis that holds
// what the bus sends for 20 ms and forwards it as one flush: commands written together (a pipeline,
// Promise.all) are one flush; each command that waits for an earlier reply is another.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { Redis } from 'ioredis';
import { uniq, waitFor } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const quiet = pino({ level: 'silent' });
const HOLD_MS = 20;

/** How one proxied connection passes each chunk on: write it, or hold it to write later. */
interface Passing {
  toRedis(chunk: Buffer, write: (b: Buffer) => void): void;
  toClient(chunk: Buffer, write: (b: Buffer) => void): void;
}

/** A TCP proxy to `target` on a free loopback port: each client gets its own connection upstream, passed by its own `passing()`. */
async function proxy(target: { host: string; port: number }, passing: () => Passing): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const pass = passing();
    client.on('data', (chunk) => pass.toRedis(chunk, (b) => upstream.write(b)));
    upstream.on('data', (chunk) => pass.toClient(chunk, (b) => client.write(b)));
    const end = () => (client.destroy(), upstream.destroy());
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A proxy to `target` (host, port) counting the bursts the clients send (see the file's comment). */
async function burstProxy(target: { host: string; port: number }): Promise<{ url: string; bursts(): number; close(): Promise<void> }> {
  let bursts = 0;
  const p = await proxy(target, () => {
    let held: Buffer[] = [];
    return {
      toRedis: (chunk, write) => {
        if (held.length === 0) {
          setTimeout(() => {
            bursts++;
            write(Buffer.concat(held));
            held = [];
          }, HOLD_MS);
        }
        held.push(chunk);
      },
      toClient: (chunk, write) => write(chunk),
    };
  });
  return { ...p, bursts: () => bursts };
}

/**
 * A proxy to `target` that passes what clients send at once, counting the XADD commands in it, and
 * holds Redis' replies while `hold()` is on (until `release()`): a reply on its way, for as long as
 * the test needs, without timing.
 */
async function replyGate(target: { host: string; port: number }): Promise<{ url: string; xadds(): number; hold(): void; release(): void; close(): Promise<void> }> {
  let xadds = 0;
  let holding = false;
  const held: Array<() => void> = [];
  const p = await proxy(target, () => ({
    toRedis: (chunk, write) => {
      xadds += chunk.toString('latin1').match(/\$4\r\nxadd\r\n/gi)?.length ?? 0;
      write(chunk);
    },
    toClient: (chunk, write) => void (holding ? held.push(() => write(chunk)) : write(chunk)),
  }));
  return {
    ...p,
    xadds: () => xadds,
    hold: () => void (holding = true),
    release: () => {
      holding = false;
      for (const write of held.splice(0)) write();
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

  test('a publish made while the reply to an earlier one is on its way is written at once, not after that reply; Redis stores them in call order', async () => {
    const gate = await replyGate({ host: u.hostname, port: Number(u.port) });
    const prefix = `${uniq('ov')}:`;
    const bus = await createRedisBus({ url: gate.url, prefix, logger: quiet, moveDue: false });
    const direct = new Redis(redis.url);
    try {
      const type = uniq('t');
      await bus.publish(type, 0); // the topic is registered: each publish below is one XADD
      gate.hold();
      const first = bus.publish(type, 1);
      await waitFor('the first XADD written', () => gate.xadds() === 2);
      // Each of these waited for the reply to the one before it (a slow reply held back every publish made meanwhile).
      const more: Promise<unknown>[] = [bus.publish(type, 2)];
      await waitFor('the second XADD written while the first reply is held', () => gate.xadds() === 3);
      more.push(bus.publishBatch([{ type, data: 3 }, { type, data: 4 }]));
      await waitFor('the third append written while two replies are held', () => gate.xadds() === 5);
      gate.release();
      await Promise.all([first, ...more]);
      const stored = (await direct.xrange(`${prefix}${type}`, '-', '+')) as [string, string[]][];
      assert.equal(stored.map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]!)), [0, 1, 2, 3, 4]);
    } finally {
      gate.release();
      direct.disconnect();
      await bus.close();
      await gate.close();
    }
  });

  test('a publish with an id (a script that may be sent again) or a named delayed one is not overtaken: what follows waits for its reply', async () => {
    const gate = await replyGate({ host: u.hostname, port: Number(u.port) });
    const prefix = `${uniq('ov')}:`;
    const bus = await createRedisBus({ url: gate.url, prefix, logger: quiet, moveDue: false });
    try {
      const type = uniq('t');
      await bus.publish(type, 0);
      gate.hold();
      const first = bus.publish(type, 1, { id: uniq('dedup') });
      await new Promise((r) => setTimeout(r, 50));
      const second = bus.publish(type, 2);
      await new Promise((r) => setTimeout(r, 50));
      assert.is(gate.xadds(), 1, 'the plain XADD waits for the reply to the script');
      gate.release();
      await Promise.all([first, second]);
      assert.is(gate.xadds(), 2);
    } finally {
      gate.release();
      await bus.close();
      await gate.close();
    }
  });

  test('a lone publish on one Redis writes its XADD inside the publish() call, not on the next turn; the publishes after it in that turn follow in call order', async () => {
    const prefix = `${uniq('now')}:`;
    const bus = await createRedisBus({ url: redis.url, prefix, logger: quiet, moveDue: false });
    const direct = new Redis(redis.url);
    const proto = Redis.prototype as unknown as { sendCommand: (cmd: { name: string }, ...rest: unknown[]) => unknown };
    const sendCommand = proto.sendCommand;
    let xadds = 0;
    proto.sendCommand = function (this: Redis, cmd: { name: string }, ...rest: unknown[]) {
      if (cmd.name === 'xadd') xadds++;
      return sendCommand.call(this, cmd, ...rest);
    };
    try {
      const type = uniq('t');
      await bus.publish(type, 0); // the topic is registered
      await new Promise((r) => setImmediate(r)); // that append's send has ended: nothing in flight
      const before = xadds;
      const first = bus.publish(type, 1);
      assert.is(xadds, before + 1, 'the XADD is written by the publish() call itself');
      const rest = [bus.publish(type, 2), bus.publishBatch([{ type, data: 3 }, { type, data: 4 }])];
      assert.is(xadds, before + 1, 'the publishes after it in the same turn wait for the next one');
      await Promise.all([first, ...rest]);
      assert.is(xadds, before + 4);
      const stored = (await direct.xrange(`${prefix}${type}`, '-', '+')) as [string, string[]][];
      assert.equal(stored.map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]!)), [0, 1, 2, 3, 4]);
    } finally {
      proto.sendCommand = sendCommand;
      direct.disconnect();
      await bus.close();
    }
  });

  test.run();
}
