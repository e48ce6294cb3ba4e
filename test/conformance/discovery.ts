import * as assert from 'uvu/assert';
import type { Bus } from '../../bus/contract.js';
import { sleep, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

/** Generous for a shared CI machine; the typical figure is a few ms (same bus) and under 100 ms (another). */
const WITHIN_MS = 500;

/**
 * A pattern subscription learns of a topic only when it appears: publishes to three brand-new
 * topics, one after the other, each must reach the handler within WITHIN_MS.
 */
async function firstEventLatencies(subscriber: Bus, publisher: Bus): Promise<number[]> {
  const prefix = uniq('disc');
  const arrived = new Map<string, number>();
  const sub = await subscriber.subscribe({ group: uniq('g'), types: [`${prefix}.*`] }, (e) => void arrived.set(e.type, performance.now()));
  const out: number[] = [];
  for (const name of ['a', 'b', 'c']) {
    await sleep(150); // the consumer is waiting on the topics it knows, between refreshes
    const type = `${prefix}.${name}`;
    const t0 = performance.now();
    await publisher.publish(type, { name });
    await waitFor(`the first event of ${type}`, () => arrived.has(type), 10_000, 2);
    out.push(Math.round(arrived.get(type)! - t0));
  }
  await sub.close();
  return out;
}

export function discoverySuite(a: Target): void {
  const test = a.scenarios('topic discovery');

  test(`a pattern subscription receives the first event of a brand-new topic published by the same bus within ${WITHIN_MS} ms`, async () => {
    const bus = await a.make();
    const ms = await firstEventLatencies(bus, bus);
    assert.ok(ms.every((m) => m < WITHIN_MS), `latencies ${ms.join(', ')} ms; expected each under ${WITHIN_MS}`);
    await bus.close();
  });

  if (a.features.sharedAcrossProcesses) {
    test(`a pattern subscription receives the first event of a brand-new topic published by another bus instance within ${WITHIN_MS} ms`, async () => {
      const [subscriber, publisher] = [await a.make(), await a.make()];
      const ms = await firstEventLatencies(subscriber, publisher);
      assert.ok(ms.every((m) => m < WITHIN_MS), `latencies ${ms.join(', ')} ms; expected each under ${WITHIN_MS}`);
      await Promise.all([subscriber.close(), publisher.close()]);
    });
  }

  test.run();
}
