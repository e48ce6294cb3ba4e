// How events are written to Redis streams (adapters/redis/layout.ts) and read back: the fields
// layout by default (what seed 003's Python consumer reads), the flat layout per topic (seed 001's
// shape), the envelope layout; exact round trips, dedup, dead letters and their retry, the size
// limit, and the option's validation. Against a real redis-server.
import { Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createRedisBus, type RedisBusOptions } from '../adapters/redis/index.js';
import { entryFields } from '../adapters/redis/layout.js';
import { createBus } from '../runtime/config.js';
import type { Bus } from '../bus/contract.js';
import type { CloudEvent } from '../bus/event.js';
import { quiet } from './conformance/index.js';
import { rejects, uniq, waitFor } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const redis = await redisForTests('redis entry layout');
const test = suite('redis entry layout');
const open: Array<{ close(): Promise<unknown> }> = [];
test.after.each(async () => {
  while (open.length) await open.pop()!.close().catch(() => {});
});

if (redis) {
  const { url } = redis;
  const raw = new Redis(url);
  const make = async (o: RedisBusOptions = {}): Promise<Bus> => {
    const bus = await createRedisBus({ url, logger: quiet, ...o });
    open.push(bus);
    return bus;
  };
  const entries = async (type: string) => ((await raw.xrange(`events:${type}`, '-', '+')) as [string, string[]][]).map(([, f]) => f);
  const collect = async (bus: Bus, type: string, from: 'earliest' | 'latest' = 'earliest') => {
    const got: CloudEvent[] = [];
    await bus.subscribe({ group: uniq('g'), types: [type], from }, (e) => void got.push(e));
    return got;
  };
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  test('default: every attribute a field, specversion first, data as JSON text; read back exactly', async () => {
    const bus = await make({ source: '/agents/a' });
    const type = uniq('device.validated');
    const opts = { id: 'ev-1', subject: 'dev-7', time: '2026-03-01T10:00:00.000Z', traceparent, dataschema: 'https://example.com/s.json', datacontenttype: 'application/json' };
    const data = { n: 1, s: 'ü "quoted"', list: [1, null, { deep: true }] };
    await bus.publish(type, data, opts);
    const plain = await bus.publish(type, 'just text');
    const [first, second] = await entries(type);
    assert.equal(first, [
      'specversion', '1.0', 'id', 'ev-1', 'type', type, 'source', '/agents/a', 'time', opts.time,
      'subject', 'dev-7', 'traceparent', traceparent, 'dataschema', opts.dataschema, 'datacontenttype', 'application/json',
      'data', JSON.stringify(data),
    ]);
    assert.equal(second.filter((_, i) => i % 2 === 0), ['specversion', 'id', 'type', 'source', 'time', 'data']);
    assert.is(second[second.length - 1], '"just text"');
    const want: CloudEvent = { specversion: '1.0', type, source: '/agents/a', data, ...opts };
    const got = await collect(bus, type);
    await waitFor('both delivered', () => got.length === 2);
    assert.equal(got[0], want);
    assert.is(got[1].id, plain);
    assert.is(got[1].data, 'just text');
    const replayed: CloudEvent[] = [];
    await bus.replay({ types: [type] }, (e) => void replayed.push(e));
    assert.equal(replayed[0], want);
  });

  test('an entry in the fields layout keeps originaltype and extension attributes; a type field naming another type is delivered as the stream\'s', async () => {
    const bus = await make();
    const [type, other] = [uniq('topic.a'), uniq('topic.b')];
    const ext = { specversion: '1.0', id: 'x-1', type, source: '/s', time: '2026-01-01T00:00:00.000Z', originaltype: 'legacy.kind', tenant: 'acme', data: { k: 'v' } } as CloudEvent;
    await raw.xadd(`events:${type}`, '*', ...entryFields('fields', ext, JSON.stringify(ext.data)));
    const forged = { ...ext, id: 'x-2', type: other, originaltype: undefined };
    await raw.xadd(`events:${type}`, '*', ...entryFields('fields', forged, '{"k":"v"}'));
    const got = await collect(bus, type);
    await waitFor('both', () => got.length === 2);
    assert.equal(got[0], ext);
    assert.equal([got[1].type, got[1].originaltype, got[1].id], [type, other, 'x-2']);
  });

  test('flat layout per pattern: data\'s keys are the fields, attributes as ce_*; read back as strings with every attribute', async () => {
    const prefix = uniq('verification');
    const bus = await make({ source: '/verifier', layout: { [`${prefix}.*`]: 'flat' } });
    const type = `${prefix}.result`;
    const data = { user_wallet: '0xabc', did_id: 0, verified: true, type: 'kyc', data: 'x', event: 'e' };
    await bus.publish(type, data, { id: 'v-1', subject: '0xabc', time: '2026-02-02T00:00:00.000Z', traceparent });
    const [fields] = await entries(type);
    assert.equal(fields, [
      'ce_specversion', '1.0', 'ce_id', 'v-1', 'ce_type', type, 'ce_source', '/verifier', 'ce_time', '2026-02-02T00:00:00.000Z',
      'ce_subject', '0xabc', 'ce_traceparent', traceparent,
      'user_wallet', '0xabc', 'did_id', '0', 'verified', 'true', 'type', 'kyc', 'data', 'x', 'event', 'e',
    ]);
    const got = await collect(bus, type);
    await waitFor('delivered', () => got.length === 1);
    assert.equal(got[0], {
      specversion: '1.0', id: 'v-1', type, source: '/verifier', time: '2026-02-02T00:00:00.000Z', subject: '0xabc', traceparent,
      data: { user_wallet: '0xabc', did_id: '0', verified: 'true', type: 'kyc', data: 'x', event: 'e' },
    });
    // Another topic of the same bus keeps the default.
    const plain = uniq('other');
    await bus.publish(plain, { nested: { ok: 1 } });
    assert.is((await entries(plain))[0][0], 'specversion');
  });

  test('flat layout refuses data it cannot write as fields, naming the key; a batch with one such entry stores nothing', async () => {
    const type = uniq('flat');
    const bus = await make({ layout: { [type]: 'flat' } });
    await rejects(() => bus.publish(type, { a: { b: 1 } }), 'INVALID_OPTION', 'flat layout', '"a"', 'an object');
    await rejects(() => bus.publish(type, { a: [1] }), 'INVALID_OPTION', '"a"', 'an array');
    await rejects(() => bus.publish(type, { a: null }), 'INVALID_OPTION', '"a"', 'null');
    await rejects(() => bus.publish(type, { a: NaN }), 'INVALID_OPTION', '"a"', 'NaN');
    await rejects(() => bus.publish(type, [1, 2]), 'INVALID_OPTION', 'an array');
    await rejects(() => bus.publish(type, 'text'), 'INVALID_OPTION', 'got string');
    await rejects(() => bus.publish(type, { ce_id: 'x' }), 'INVALID_OPTION', '"ce_id"', 'ce_');
    await rejects(() => bus.publish(type, Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i]))), 'INVALID_OPTION', 'more than 1000 keys');
    await rejects(() => bus.publishBatch([{ type, data: { ok: 1 } }, { type, data: { bad: {} } }]), 'INVALID_OPTION', '"bad"');
    assert.equal(await entries(type), []);
    await bus.publish(type, { ok: 1, skipped: undefined });
    assert.equal((await entries(type))[0].slice(-2), ['ok', '1']);
    // The most keys, through the publish-once script (a caller id): every one is an argument.
    await bus.publish(type, Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i])), { id: 'wide' });
    assert.is((await entries(type))[1].length, 2 * (1000 + 5));
  });

  test('envelope layout: one event field holding the envelope', async () => {
    const bus = await make({ layout: { '*': 'envelope' } });
    const type = uniq('env');
    const id = await bus.publish(type, { a: 1 });
    const [fields] = await entries(type);
    assert.is(fields.length, 2);
    assert.is(fields[0], 'event');
    assert.equal((JSON.parse(fields[1]) as CloudEvent).id, id);
    const got = await collect(bus, type);
    await waitFor('delivered', () => got.length === 1 && got[0].id === id);
  });

  test('a caller id is stored once in every layout (the publish-once script takes the field list)', async () => {
    const [f, fl, en] = [uniq('d.fields'), uniq('d.flat'), uniq('d.env')];
    const bus = await make({ layout: { [fl]: 'flat', [en]: 'envelope' } });
    for (const type of [f, fl, en]) {
      await bus.publish(type, { n: 1 }, { id: 'same' });
      await bus.publish(type, { n: 2 }, { id: 'same' });
    }
    assert.equal((await entries(f)).map((x) => x.slice(0, 4)), [['specversion', '1.0', 'id', 'same']]);
    assert.equal((await entries(fl)).map((x) => [x[0], x[3], x[x.length - 1]]), [['ce_specversion', 'same', '1']]);
    assert.equal((await entries(en)).map((x) => x[0]), ['event']);
  });

  test('a dead letter of a fields or flat entry keeps its envelope; retried, the same event comes back', async () => {
    const [f, fl] = [uniq('dl.fields'), uniq('dl.flat')];
    const bus = await make({ layout: { [fl]: 'flat' } });
    for (const type of [f, fl]) {
      const group = uniq('g');
      const got: CloudEvent[] = [];
      let fail = true;
      await bus.subscribe({ group, types: [type], maxAttempts: 1 }, (e) => {
        if (fail) throw new Error('not yet');
        got.push(e);
      });
      const id = await bus.publish(type, { wallet: '0x1', n: 2 }, { subject: 's-1', traceparent });
      await waitFor('dead letter', async () => (await bus.deadLetters.list({ group })).length === 1);
      const [dl] = await bus.deadLetters.list({ group });
      const data = type === fl ? { wallet: '0x1', n: '2' } : { wallet: '0x1', n: 2 };
      assert.equal([dl.event?.id, dl.event?.type, dl.event?.subject, dl.event?.traceparent, dl.event?.data, dl.raw], [id, type, 's-1', traceparent, data, null]);
      fail = false;
      assert.is(await bus.deadLetters.retry([dl.id]), 1);
      await waitFor('retried', () => got.length === 1);
      assert.equal(got[0], dl.event);
    }
  });

  test('maxPayloadBytes counts the envelope as JSON in every layout', async () => {
    const type = uniq('size');
    const event = (data: unknown) => ({ specversion: '1.0', id: 'i', type, source: '/s', time: '2026-01-01T00:00:00.000Z', data });
    const limit = Buffer.byteLength(JSON.stringify(event({ text: 'é'.repeat(40) })));
    for (const layout of ['fields', 'flat', 'envelope'] as const) {
      const bus = await make({ maxPayloadBytes: limit, source: '/s', layout: { [type]: layout } });
      const opts = { id: 'i', time: '2026-01-01T00:00:00.000Z' };
      await bus.publish(type, { text: 'é'.repeat(40) }, opts);
      await rejects(() => bus.publish(type, { text: `${'é'.repeat(40)}x` }, opts), 'PAYLOAD_TOO_LARGE', `${limit + 1} bytes`, String(limit));
      await rejects(() => bus.publish(type, { text: 'é'.repeat(41) }, opts), 'PAYLOAD_TOO_LARGE', `${limit + 2} bytes`);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await rejects(async () => (await make()).publish(type, cyclic), 'INVALID_OPTION', 'not JSON-serializable');
  });

  test('the layout option is validated', async () => {
    await rejects(() => make({ layout: 'flat' as never }), 'INVALID_OPTION', 'invalid layout "flat"');
    await rejects(() => make({ layout: { 'a.*': 'flatt' as never } }), 'INVALID_OPTION', '"flatt"', '"a.*"', "'fields', 'flat' or 'envelope'");
    await rejects(() => make({ layout: { 'a b': 'flat' } }), 'INVALID_OPTION', 'invalid layout key', '"a b"');
    await rejects(() => make({ layout: { '*.x': 'flat' } }), 'INVALID_OPTION', 'invalid layout key');
  });

  test('AGENTBUS_REDIS_LAYOUT sets the layout of a bus made from the environment; bad JSON is refused', async () => {
    const type = uniq('env.flat');
    const env = { AGENTBUS_ADAPTER: 'redis', REDIS_URL: url, AGENTBUS_REDIS_LAYOUT: JSON.stringify({ [type]: 'flat' }) };
    const bus = await createBus({ logger: quiet }, env);
    open.push(bus);
    await bus.publish(type, { a: 1 });
    assert.equal((await entries(type))[0].slice(-2), ['a', '1']);
    await rejects(() => createBus({ logger: quiet }, { ...env, AGENTBUS_REDIS_LAYOUT: '{verification: flat}' }), 'INVALID_OPTION', 'AGENTBUS_REDIS_LAYOUT', 'expected JSON');
    await rejects(() => createBus({ logger: quiet }, { ...env, AGENTBUS_REDIS_LAYOUT: '{"a.*":"flatt"}' }), 'INVALID_OPTION', '"flatt"');
  });

  test('the most specific setting wins: an exact type, then the longest prefix', async () => {
    const p = uniq('spec');
    const bus = await make({ layout: { [`${p}.*`]: 'flat', [`${p}.deep.*`]: 'envelope', [`${p}.deep.exact`]: 'fields' } });
    for (const t of ['one', 'deep.two', 'deep.exact']) await bus.publish(`${p}.${t}`, { a: 1 });
    assert.equal(
      [(await entries(`${p}.one`))[0][0], (await entries(`${p}.deep.two`))[0][0], (await entries(`${p}.deep.exact`))[0][0]],
      ['ce_specversion', 'event', 'specversion'],
    );
  });

  test.after(() => void raw.disconnect());
}

test.run();
