// An append lets each command's arguments go once Redis answered it, not once the whole batch did
// (adapters/redis/streams.ts append). A Pipeline kept every command of a publishBatch, and so every
// entry's encoded fields, until its last reply: young-generation collections running while it
// waited for Redis promoted them (about 117 MB per 100,000 events published 1,000 a call,
// bench/cpu.ts and bench/redis-drain.ts `promotedMB`). What a collection promotes depends on when it
// runs, so this observes reachability itself: one command of a batch has its reply held back (its
// resolution is deferred on the ioredis command; Redis stored it), the others are answered, and a
// full collection must then find the arguments of those answered commands gone.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import { uniq, waitFor } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const quiet = pino({ level: 'silent' });
const base = await redisForTests('redis publish release');

interface Cmd {
  name: string;
  args: unknown[];
  resolve: (v: unknown) => void;
}

if (base) {
  const test = suite('redis: an append lets its answered commands go');

  test('while one reply of a publishBatch is still awaited, the answered XADDs arguments are unreachable', async () => {
    const type = uniq('ev');
    const marker = uniq('held');
    const proto = Redis.prototype as unknown as { sendCommand: (cmd: Cmd, ...rest: unknown[]) => unknown };
    const sendCommand = proto.sendCommand;
    const answered: WeakRef<unknown[]>[] = [];
    let answeredCount = 0;
    let release: (() => void) | null = null;
    proto.sendCommand = function (this: Redis, cmd: Cmd, ...rest: unknown[]) {
      if (cmd.name === 'xadd' && cmd.args.some((a) => typeof a === 'string' && a.includes(type))) {
        const resolve = cmd.resolve;
        if (cmd.args.some((a) => typeof a === 'string' && a.includes(marker))) {
          // Held back: the append waits for this one reply until the test releases it.
          cmd.resolve = (v) => void (release = () => resolve(v));
        } else {
          answered.push(new WeakRef(cmd.args));
          cmd.resolve = (v) => {
            answeredCount++;
            resolve(v);
          };
        }
      }
      return sendCommand.call(this, cmd, ...rest);
    };
    const bus = await createRedisBus({ url: base.url, prefix: uniq('release'), logger: quiet });
    try {
      const n = 200;
      const events = Array.from({ length: n }, (_, i) => ({ type, data: { i, tag: i === n - 1 ? marker : 'x'.repeat(100) } }));
      const published = bus.publishBatch(events);
      events.length = 0;
      await waitFor('the other XADDs answered', () => answeredCount === n - 1 && release !== null);
      assert.is(answered.length, n - 1);
      // WeakRefs read in this job keep their targets to its end: collect on a later turn.
      await new Promise((r) => setImmediate(r));
      gc();
      const alive = answered.filter((r) => r.deref() !== undefined).length;
      (release as unknown as () => void)();
      const ids = await published;
      assert.is(ids.length, n);
      // The last answered command may still be referenced by the connection's reply handling.
      assert.ok(alive <= 2, `${alive} of ${n - 1} answered XADDs still reachable while the batch's last reply was awaited`);
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
