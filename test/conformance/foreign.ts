import * as assert from 'uvu/assert';
import type { Bus } from '../../bus/contract.js';
import type { CloudEvent } from '../../bus/event.js';
import { sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

const KiB = 1024;

async function groupStats(bus: Bus, type: string, group: string) {
  return (await bus.stats()).find((s) => s.type === type)?.groups.find((g) => g.group === group);
}

function envelope(type: string, data: string, id = uniq('foreign-id')): string {
  return `{"specversion":"1.0","id":"${id}","type":"${type}","source":"/elsewhere","time":"2026-01-01T00:00:00.000Z","data":${data}}`;
}

/** Entries written straight into the store by someone else: their envelope is not trusted. */
export function foreignSuite(a: Target): void {
  const test = a.scenarios('entries written by others');

  test('an entry stored under A whose envelope says type B is delivered as A (originaltype B), to A\'s subscribers only', async () => {
    const bus = await a.make();
    const [typeA, typeB] = [uniq('topic.a'), uniq('topic.b')];
    const [groupA, groupB] = [uniq('ga'), uniq('gb')];
    const gotA: CloudEvent[] = [];
    const gotB: CloudEvent[] = [];
    const subA = await bus.subscribe({ group: groupA, types: [typeA] }, (e) => void gotA.push(e));
    const subB = await bus.subscribe({ group: groupB, types: [typeB] }, (e) => void gotB.push(e));
    const id = uniq('forged');
    await a.store.injectEnvelope(typeA, envelope(typeB, '{"forged":true}', id));
    const own = await bus.publish(typeB, 'b');
    await bus.publish(typeA, 'a');
    await waitFor('A got both, B its own', () => gotA.length === 2 && gotB.length === 1);
    const forged = gotA.find((e) => e.id === id)!;
    assert.is(forged.type, typeA);
    assert.is(forged.originaltype, typeB);
    assert.equal(forged.data, { forged: true });
    assert.equal(gotA.find((e) => e.id !== id)!.originaltype, undefined, 'an event of ours has no originaltype');
    await sleep(200);
    assert.equal(gotB.map((e) => e.id), [own], 'B\'s subscribers saw the entry stored under A');
    const replayed: CloudEvent[] = [];
    await bus.replay({ types: [typeA] }, (e) => void replayed.push(e));
    assert.equal(replayed.map((e) => [e.type, e.originaltype]), [[typeA, typeB], [typeA, undefined]], 'replay delivers it as A too');
    await Promise.all([subA.close(), subB.close()]);
    await bus.close();
  });

  if (a.features.foreignFieldEntries) {
    test('a type/source/data entry (seed 003) whose type field differs from its stream is delivered as the stream\'s type', async () => {
      const bus = await a.make();
      const [typeA, typeB] = [uniq('stream.a'), uniq('stream.b')];
      const got: CloudEvent[] = [];
      const gotB: CloudEvent[] = [];
      const sub = await bus.subscribe({ group: uniq('g'), types: [typeA] }, (e) => void got.push(e));
      const subB = await bus.subscribe({ group: uniq('g'), types: [typeB] }, (e) => void gotB.push(e));
      await a.store.injectFields!(typeA, ['type', typeB, 'source', 'python', 'data', '{"n":1}']);
      await waitFor('the entry', () => got.length === 1);
      assert.equal([got[0].type, got[0].originaltype, got[0].source, got[0].data], [typeA, typeB, 'python', { n: 1 }]);
      await sleep(200);
      assert.is(gotB.length, 0, 'delivered to the type its fields named');
      await Promise.all([sub.close(), subB.close()]);
      await bus.close();
    });
  }

  test('an entry nested 10,000 levels deep ends as exactly one dead letter and leaves nothing pending', async () => {
    const bus = await a.make();
    const type = uniq('deep');
    const group = uniq('g');
    const got: unknown[] = [];
    const outcomes: string[] = [];
    const sub = await bus.subscribe(
      { group, types: [type], maxAttempts: 1, claimIdleMs: 200, onOutcome: (o) => void outcomes.push(o.outcome) },
      (e) => {
        if (e.data !== 'after') throw new Error('cannot handle this');
        got.push(e.data);
      },
    );
    await a.store.injectEnvelope(type, envelope(type, '['.repeat(10_000) + ']'.repeat(10_000)));
    await bus.publish(type, 'after');
    await waitFor('the event after it', () => got.length === 1);
    await waitFor('one dead letter', async () => (await bus.deadLetters.list({ group })).length === 1);
    await sleep(800); // several claim cycles: the entry must not come back
    const dls = await bus.deadLetters.list({ group });
    assert.is(dls.length, 1);
    assert.is(dls[0].reason, 'failed');
    assert.is((await groupStats(bus, type, group))?.pending, 0);
    assert.equal(outcomes.filter((o) => o === 'dead_lettered'), ['dead_lettered'], 'reported once');
    await sub.close();
    await bus.close();
  });

  test('an entry larger than maxPayloadBytes is not decoded: a dead letter "oversize" with a short raw; the events after it are delivered', async () => {
    const bus = await a.make({ maxPayloadBytes: 64 * KiB });
    const type = uniq('huge');
    const group = uniq('g');
    await bus.publish(type, 'before');
    await a.store.injectEnvelope(type, envelope(type, JSON.stringify('x'.repeat(1024 * KiB))));
    await bus.publish(type, 'after');
    const got: unknown[] = [];
    const sub = await bus.subscribe({ group, types: [type], from: 'earliest' }, (e) => void got.push(e.data));
    await waitFor('the events around it', () => got.length === 2);
    await waitFor('the oversize dead letter', async () => (await bus.deadLetters.list({ group })).length === 1);
    assert.equal(got, ['before', 'after']);
    const [dl] = await bus.deadLetters.list({ group });
    assert.is(dl.reason, 'oversize');
    assert.is(dl.event, null);
    assert.ok(dl.raw !== null && dl.raw.length < 2 * KiB, `raw of ${dl.raw?.length} characters`);
    assert.ok(dl.raw!.startsWith('{"specversion"'), dl.raw!.slice(0, 50));
    assert.ok(dl.error.includes(String(64 * KiB)) && dl.error.includes('maxPayloadBytes'), dl.error);
    assert.is((await groupStats(bus, type, group))?.pending, 0);
    const replay = await bus.replay({ types: [type] }, () => {});
    assert.is(replay.handled, 2);
    assert.equal(replay.failed.map((f) => f.error.split(':')[0]), ['oversize']);
    await sub.close();
    await bus.close();
  });

  test.run();
}
