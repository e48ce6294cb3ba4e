// What a keyed group's owner looked at on its reply topic (bus/keyed/reply-reads.ts): a run waiting
// for a look makes reads not block (`wanted`) only while it waits. No store: the looks are in memory
// (the driver is only woken).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Driver } from '../bus/driver.js';
import { ReplyReads } from '../bus/keyed/reply-reads.js';

function reads(): { r: ReplyReads; woken: () => number } {
  let n = 0;
  const driver = { reads: { wake: () => void n++ } } as unknown as Driver;
  return { r: new ReplyReads(driver, 'g', 'c'), woken: () => n };
}

test('a look resolves after a complete read sent at or after it; wanted meanwhile', async () => {
  const { r, woken } = reads();
  let done = false;
  void r.lookedAt(1000).then(() => (done = true));
  assert.ok(r.wanted);
  assert.is(woken(), 1, 'the read in flight is woken');
  r.read(999, true);
  r.read(1000, false);
  await new Promise((resolve) => setImmediate(resolve));
  assert.not.ok(done, 'neither a read sent before it nor an incomplete one');
  r.read(1000, true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(done);
  assert.not.ok(r.wanted);
});

test('a waiter that ends (its signal aborted: a reply, an abort, a close, a lost tenure) removes its look: reads block again', async () => {
  const { r } = reads();
  const ends = new AbortController();
  let done = false;
  void r.lookedAt(1000, ends.signal).then(() => (done = true));
  const other = new AbortController();
  void r.lookedAt(2000, other.signal);
  assert.ok(r.wanted);
  ends.abort();
  assert.ok(r.wanted, 'the other look stays');
  other.abort();
  assert.not.ok(r.wanted, 'no look left once every waiter ended');
  r.read(5000, true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.not.ok(done, 'an ended look is not resolved');
  const gone = new AbortController();
  gone.abort();
  void r.lookedAt(3000, gone.signal);
  assert.not.ok(r.wanted, 'a waiter already ended adds no look');
});

test.run();
