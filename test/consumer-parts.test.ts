// The consumer's small parts on their own, without a store: subject lanes (bus/lanes.ts) and the
// "collect, flush on setImmediate" batcher (bus/batcher.ts) its acks and the bus' publishes share;
// then its scheduler step, on a SQLite :memory: bus.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { SubjectLanes } from '../bus/lanes.js';
import { Batcher } from '../bus/batcher.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { uniq, waitFor } from './helpers/index.js';

const lanes = suite('subject lanes');

lanes('the first of a subject runs; later ones wait in order; other subjects pass', () => {
  const l = new SubjectLanes<string>();
  assert.ok(l.enter('a', 'a1'));
  assert.not.ok(l.enter('a', 'a2'));
  assert.not.ok(l.enter('a', 'a3'));
  assert.ok(l.enter('b', 'b1'));
  assert.is(l.queued, 2);
  assert.is(l.leave('a', 'a1'), 'a2', 'the head leaving hands over the next, in arrival order');
  assert.is(l.queued, 1);
  assert.is(l.leave('b', 'b1'), undefined, 'a lane left empty hands over nothing');
  assert.is(l.leave('a', 'a2'), 'a3');
  assert.is(l.leave('a', 'a3'), undefined);
  assert.is(l.queued, 0);
  assert.ok(l.enter('a', 'a4'), 'an emptied lane was removed: the next of its subject runs at once');
});

lanes('an item that is not its lane head changes nothing when it leaves', () => {
  const l = new SubjectLanes<string>();
  l.enter('a', 'a1');
  l.enter('a', 'a2');
  assert.is(l.leave('a', 'a2'), undefined);
  assert.is(l.leave('a', 'other'), undefined);
  assert.is(l.leave('nope', 'x'), undefined);
  assert.is(l.queued, 1);
  assert.is(l.leave('a', 'a1'), 'a2');
});

lanes('parkedQueued counts, as items come and go, those queued behind a parked subject', () => {
  const l = new SubjectLanes<string>();
  l.enter('a', 'a1');
  l.enter('a', 'a2');
  l.enter('b', 'b1');
  l.enter('b', 'b2');
  l.park('a');
  assert.is(l.parkedQueued, 1, 'what already waits behind it counts at once');
  l.enter('a', 'a3');
  l.enter('b', 'b3');
  assert.is(l.parkedQueued, 2, 'a later arrival behind a parked head counts; one behind another lane does not');
  assert.ok(l.remove('a', 'a2'), 'taken out of its lane (a wait took it)');
  assert.is(l.parkedQueued, 1);
  l.park('a');
  l.unpark('a');
  assert.is(l.parkedQueued, 1, 'parks nest: still parked until each has its unpark');
  l.unpark('a');
  assert.is(l.parkedQueued, 0);
  l.unpark('a');
  l.unpark('never');
  assert.is(l.parkedQueued, 0, 'an unpark with no park changes nothing');
  l.park('b');
  assert.is(l.parkedQueued, 2);
  assert.is(l.leave('b', 'b1'), 'b2', 'the next becomes the head: it no longer waits behind it');
  assert.is(l.parkedQueued, 1);
  l.unpark('b');
  assert.is(l.parkedQueued, 0);
  assert.is(l.queued, 2);
});

lanes.run();

const batcher = suite('batcher');
const immediate = () => new Promise<void>((r) => setImmediate(r));

batcher('items added in one turn go out together on the next setImmediate, in order', async () => {
  const sent: number[][] = [];
  const b = new Batcher<number>(async (xs) => void sent.push(xs));
  b.add(1);
  b.add(2);
  b.add(3);
  assert.equal(sent, [], 'nothing is sent synchronously');
  await immediate();
  await immediate();
  assert.equal(sent, [[1, 2, 3]]);
});

batcher('items added while a send is in flight go in the next send; sends never overlap', async () => {
  const sent: number[][] = [];
  let inFlight = 0;
  let most = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const b = new Batcher<number>(async (xs) => {
    most = Math.max(most, ++inFlight);
    sent.push(xs);
    if (sent.length === 1) await gate;
    inFlight--;
  });
  b.add(1);
  await immediate();
  b.add(2);
  b.add(3);
  await immediate();
  assert.equal(sent, [[1]], 'the second batch waits for the first send');
  release();
  await b.flush();
  assert.equal(sent, [[1], [2, 3]]);
  assert.is(most, 1);
});

batcher('with atOnce, a lone item is sent inside add(); items added while that send is in flight go together in the next one', async () => {
  const sent: number[][] = [];
  let allowed = true;
  const b = new Batcher<number>(async (xs) => void sent.push(xs), { atOnce: () => allowed });
  b.add(1);
  assert.equal(sent, [[1]], 'sent at once');
  b.add(2);
  b.add(3);
  assert.equal(sent, [[1]], 'the first send is still in flight');
  await b.flush();
  assert.equal(sent, [[1], [2, 3]]);
  allowed = false;
  b.add(4);
  assert.equal(sent, [[1], [2, 3]], 'atOnce() said no: the next setImmediate');
  await immediate();
  await immediate();
  assert.equal(sent, [[1], [2, 3], [4]]);
});

batcher('with overlap, items added while a send is in flight go on the next setImmediate without waiting for it, in order; flush() waits for every send', async () => {
  const sent: number[][] = [];
  const gates: Array<() => void> = [];
  let refuse = false;
  const b = new Batcher<number>(
    (xs) => {
      sent.push(xs);
      return new Promise<void>((r) => gates.push(r));
    },
    { overlap: (waiting) => !refuse && !waiting.includes(99) },
  );
  b.add(1);
  await immediate();
  b.add(2);
  b.add(3);
  await immediate();
  assert.equal(sent, [[1], [2, 3]], 'sent while the first send is in flight');
  b.add(99);
  b.add(4);
  await immediate();
  assert.equal(sent, [[1], [2, 3]], 'overlap() said no: they wait for the send in flight');
  let flushed = false;
  const flushing = b.flush().then(() => (flushed = true));
  gates[0]!();
  await immediate();
  assert.equal(sent, [[1], [2, 3], [99, 4]], 'the drain takes them after its own send');
  gates[2]!();
  await immediate();
  assert.not.ok(flushed, 'an overlapping send is still in flight');
  gates[1]!();
  await flushing;
  refuse = true;
  b.add(5);
  await immediate();
  b.add(6);
  await immediate();
  assert.equal(sent.slice(3), [[5]], 'overlap() said no');
  gates[3]!();
  await immediate();
  assert.equal(sent.slice(3), [[5], [6]]);
  gates[4]!();
  await b.flush();
});

batcher('take() carries the waiting items elsewhere; restore() puts them back for the next send', async () => {
  const sent: number[][] = [];
  const b = new Batcher<number>(async (xs) => void sent.push(xs));
  b.add(1);
  b.add(2);
  assert.equal(b.take(), [1, 2]);
  await immediate();
  await immediate();
  assert.equal(sent, [], 'taken items are not sent');
  b.restore([1, 2]);
  await b.flush();
  assert.equal(sent, [[1, 2]]);
});

batcher('a kick finding its items taken leaves nothing in flight: the next item is sent, and busy is false meanwhile', async () => {
  const sent: number[][] = [];
  const b = new Batcher<number>(async (xs) => void sent.push(xs));
  b.add(1); // kicks: a send on the next setImmediate
  assert.equal(b.take(), [1], 'carried some other way before it fell due');
  assert.not.ok(b.busy, 'nothing waits, nothing is sent');
  await immediate();
  await immediate();
  assert.equal(sent, []);
  b.add(2);
  await immediate();
  await immediate();
  assert.equal(sent, [[2]], 'the batcher still sends');
  assert.not.ok(b.busy);
});

batcher('deferred when its setImmediate comes, a kick leaves the items for take() or the next kick', async () => {
  const sent: number[][] = [];
  let deferred = true;
  const b = new Batcher<number>(async (xs) => void sent.push(xs), { deferred: () => deferred });
  b.add(1);
  b.add(2);
  await immediate();
  await immediate();
  assert.equal(sent, [], 'put off');
  assert.is(b.pending, 2);
  deferred = false;
  b.kick();
  b.kick(); // one send however many kicks
  await immediate();
  await immediate();
  assert.equal(sent, [[1, 2]]);
  b.add(3);
  deferred = true;
  await b.flush(); // flush() never defers
  assert.equal(sent, [[1, 2], [3]]);
});

batcher('while carried() is true, add() sets no setImmediate: the items wait for take() or kick()', async () => {
  const sent: number[][] = [];
  let carried = true;
  const b = new Batcher<number>(async (xs) => void sent.push(xs), { carried: () => carried });
  b.add(1);
  b.add(2);
  carried = false;
  await immediate();
  await immediate();
  assert.equal(sent, [], 'not sent on its own');
  assert.equal(b.take(), [1, 2], 'the caller takes them');
  carried = true;
  b.add(3);
  carried = false;
  b.kick(); // or kicks them
  await immediate();
  await immediate();
  assert.equal(sent, [[3]]);
  b.add(4); // carried() false: as always
  await immediate();
  await immediate();
  assert.equal(sent, [[3], [4]]);
});

batcher('flush() sends what waits now and resolves once everything added is sent; a failed send does not stop the next', async () => {
  const sent: number[][] = [];
  const b = new Batcher<number>(async (xs) => {
    sent.push(xs);
    if (xs[0] === 1) throw new Error('store down');
  });
  b.add(1);
  await b.flush();
  b.add(2);
  await b.flush();
  assert.equal(sent, [[1], [2]]);
  await b.flush(); // nothing waiting: resolves at once
});

batcher.run();

const scheduler = suite('consumer scheduler');

scheduler('the next delivery of a subject starts from the scheduler, never inside the settling of the one before', async () => {
  const bus = await createSqliteBus({ path: ':memory:', logger: pino({ level: 'silent' }) });
  const type = uniq('lane');
  // Set while the first delivery settles (its onOutcome runs, then its ack hands the lane over);
  // cleared by a microtask queued then. A handler started inside that settling would see it set.
  let settling = false;
  const seen: Array<[number, boolean]> = [];
  try {
    await bus.subscribe(
      {
        group: uniq('g'),
        types: [type],
        concurrency: 4,
        orderBy: 'subject',
        onOutcome: (o) => {
          if (o.outcome !== 'handled') return;
          settling = true;
          queueMicrotask(() => (settling = false));
        },
      },
      async (e) => void seen.push([(e.data as { n: number }).n, settling]),
    );
    await bus.publishBatch([1, 2, 3].map((n) => ({ type, data: { n }, subject: 'conversation-1' })));
    await waitFor('three deliveries of one subject', () => seen.length === 3);
    assert.equal(seen, [[1, false], [2, false], [3, false]], 'in order, each started after the previous one settled');
  } finally {
    await bus.close(); // closes the subscription too, also after a failed assertion
  }
});

scheduler('a handler that returns at once is settled before the next handler of its batch is called (no microtask per delivery between them)', async () => {
  const bus = await createSqliteBus({ path: ':memory:', logger: pino({ level: 'silent' }) });
  const type = uniq('sync');
  const seen: string[] = [];
  try {
    // Stored first: the subscription's first read takes all three, one batch.
    await bus.publishBatch([1, 2, 3].map((n) => ({ type, data: { n } })));
    await bus.subscribe(
      { group: uniq('g'), types: [type], from: 'earliest', concurrency: 4, onOutcome: (o) => void seen.push(`settled ${o.position}`) },
      (e, ctx) => void seen.push(`called ${ctx.position} ${(e.data as { n: number }).n}`),
    );
    await waitFor('three settled', () => seen.length === 6);
    const positions = seen.filter((s) => s.startsWith('called')).map((s) => s.split(' ')[1]);
    assert.equal(seen, positions.flatMap((p, i) => [`called ${p} ${i + 1}`, `settled ${p}`]));
  } finally {
    await bus.close();
  }
});

scheduler.run();
