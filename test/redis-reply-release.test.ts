// A read's reply is let go as soon as its deliveries are built: the arrays ioredis resolved an
// XREADGROUP with are emptied (adapters/redis/read.ts readNew). Something keeps the reply array
// itself reachable after the read, so a drain's young-generation collections found its strings
// alive twice and promoted them to the old generation: 31 MB per 100,000 events
// (bench/redis-drain.ts `promotedMB`) against 3 MB with the reply emptied. What a collection does
// depends on the heap's state (a bare ioredis loop promoted 0-62 MB from run to run), so this
// observes the replies themselves: every XREADGROUP reply the reader got is captured (sendCommand,
// which every command goes through, is wrapped on the ioredis prototype, the reader being a
// connection of the bus' own) and must hold no entries once the events are handled.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis, type Command } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { uniq, waitFor } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const quiet = pino({ level: 'silent' });
const base = await redisForTests('redis reply release');

type Reply = [key: string, entries: [id: string, fields: string[]][]][] | null;

if (base) {
  const test = suite('redis: a read lets its reply go');

  test('after a drain, the XREADGROUP replies the reader got hold no entries', async () => {
    const replies: Exclude<Reply, null>[] = [];
    const proto = Redis.prototype as unknown as { sendCommand: (command: Command, ...rest: unknown[]) => unknown };
    const sendCommand = proto.sendCommand;
    proto.sendCommand = function (this: Redis, command: Command, ...rest: unknown[]) {
      const sent = sendCommand.call(this, command, ...rest);
      if (command.name === 'xreadgroup') {
        (command.promise as Promise<Reply>).then(
          (res) => void (res !== null && replies.push(res)),
          () => {},
        );
      }
      return sent;
    };
    const bus = await createRedisBus({ url: base.url, prefix: uniq('release'), logger: quiet });
    try {
      const type = uniq('ev');
      await bus.publishBatch(Array.from({ length: 300 }, (_, i) => ({ type, data: { i } })));
      let handled = 0;
      const sub = await bus.subscribe({ group: 'g', types: [type], from: 'earliest', concurrency: 8 }, (e) => {
        assert.is(typeof (e.data as { i: number }).i, 'number');
        handled++;
      });
      await waitFor('all 300 handled', () => handled === 300);
      await sub.close();
      const entries = replies.flatMap((r) => r.map(([, es]) => es.length));
      assert.ok(entries.length > 0, 'no XREADGROUP reply was captured');
      assert.equal(entries.filter((n) => n > 0), [], 'replies still holding entries after their deliveries were built');
    } finally {
      proto.sendCommand = sendCommand;
      await bus.close();
    }
  });

  test.after(async () => {
    await base.server?.stop();
  });
  test.run();
}
