// The hop's commands written as one Buffer each (adapters/redis/resp.ts): the same bytes as
// ioredis' own encoding, whatever the arguments hold, and the same command, reply and errors
// through a real redis-server; a client whose options change how ioredis sends gets its own call.
import { Command, Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { BufferCommand, encodeCommand, sendEncoded } from '../adapters/redis/resp.js';
import { createRedisBus } from '../adapters/redis/index.js';
import { uniq, waitFor } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const quiet = pino({ level: 'silent' });
const test = suite('redis command encoding');
const redis = await redisForTests('redis command encoding');

/** What ioredis writes for `name` `args`, as bytes. */
const ioredisBytes = (name: string, args: unknown[]) => {
  const w = new Command(name, args as never).toWritable({});
  return typeof w === 'string' ? Buffer.from(w) : w;
};

test('the bytes ioredis writes: ASCII, multi-byte UTF-8, a lone surrogate, empty, long, and numbers as ioredis turns them to text', () => {
  const cases: unknown[][] = [
    ['events:a.hop', '*', 'specversion', '1.0', 'id', 'x', 'data', '{"a":1}'],
    ['k', '*', 'subject', 'café', 'data', JSON.stringify({ s: 'ünïcödé ✓ 😀 日本語' })],
    ['k', '*', 'f', '\ud800', 'g', 'x\udc00y'],
    ['k', '*', '', '', 'e', ''],
    ['k', '*', 'data', 'é'.repeat(70_000)],
    ['GROUP', 'g', 'host/1/abc', 'COUNT', 500, 'BLOCK', 1000, 'STREAMS', 'events:a', '>'],
    [],
  ];
  for (const args of cases) {
    const name = args.length && args[0] === 'GROUP' ? 'xreadgroup' : 'xadd';
    const mine = new BufferCommand(name, args as never).toWritable({});
    assert.ok(Buffer.isBuffer(mine));
    assert.ok((mine as Buffer).equals(ioredisBytes(name, args)), `${name} ${JSON.stringify(args).slice(0, 80)}`);
  }
});

test('a Buffer argument is left to ioredis', () => {
  assert.is(encodeCommand('set', ['k', Buffer.from('v')]), null);
  const args = ['k', Buffer.from([0xff, 0x00])];
  assert.equal(new BufferCommand('set', args as never).toWritable({}), new Command('set', args as never).toWritable({}));
});

if (redis) {
  const raw = new Redis(redis.url);

  test('XADD, XREADGROUP and XACK sent encoded: stored as given, the replies as ioredis gives them, errors as Redis sends them', async () => {
    const key = uniq('resp');
    const fields = ['specversion', '1.0', 'subject', 'café ✓ 😀', 'data', JSON.stringify({ n: 'é'.repeat(5000) })];
    const id = await sendEncoded<string>(raw, 'xadd', [key, '*', fields]);
    assert.match(id, /^\d+-\d+$/);
    assert.equal(await raw.xrange(key, '-', '+'), [[id, fields]]);
    await raw.xgroup('CREATE', key, 'g', '0');
    const read = await sendEncoded(raw, 'xreadgroup', ['GROUP', 'g', 'c', 'COUNT', 10, 'BLOCK', 100, 'STREAMS', [key, '>']]);
    assert.equal(read, [[key, [[id, fields]]]]);
    assert.is(await sendEncoded(raw, 'xack', [key, 'g', [id]]), 1);
    const err = await sendEncoded(raw, 'xreadgroup', ['GROUP', 'nogroup', 'c', 'STREAMS', [key, '>']]).catch((e: Error) => e);
    assert.instance(err, Error);
    assert.match((err as Error).message, 'NOGROUP');
  });

  test('a client with a keyPrefix gets ioredis` own call (the prefix applies)', async () => {
    const prefixed = new Redis(redis.url, { keyPrefix: 'pre:' });
    try {
      const key = uniq('resp');
      await sendEncoded(prefixed, 'xadd', [key, '*', ['a', 'b']]);
      assert.is(await raw.xlen(`pre:${key}`), 1);
      assert.is(await raw.xlen(key), 0);
    } finally {
      prefixed.disconnect();
    }
  });

  test('an event with multi-byte text crosses a bus unchanged', async () => {
    const bus = await createRedisBus({ url: redis.url, logger: quiet });
    try {
      const type = uniq('resp');
      const got: unknown[] = [];
      await bus.subscribe({ group: uniq('g'), types: [type] }, (e) => void got.push([e.subject, e.data]));
      const data = { text: 'ünïcödé ✓ 😀 日本語', long: 'é'.repeat(3000) };
      await bus.publish(type, data, { subject: 'café' });
      await waitFor('the event', () => got.length === 1);
      assert.equal(got, [['café', data]]);
    } finally {
      await bus.close();
    }
  });

  test.after(() => void raw.disconnect());
}

test.run();
