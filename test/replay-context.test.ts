// Replay hands each event over with the same delivery context class as a subscription
// (bus/context.ts), so ctx.deadLetter means the same in both; on a SQLite :memory: bus.
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { uniq } from './helpers/index.js';

test('replay: ctx.deadLetter with or without a reason is a failure, as it is a dead letter live; the context names the replay', async () => {
  const bus = await createSqliteBus({ path: ':memory:', logger: pino({ level: 'silent' }) });
  try {
    const type = uniq('replayed');
    const ids = await bus.publishBatch([{ type, data: 'ok' }, { type, data: 'no reason' }, { type, data: 'reason' }]);
    const contexts: unknown[] = [];
    const result = await bus.replay({ types: [type] }, (e, ctx) => {
      contexts.push([ctx.attempt, ctx.group, ctx.consumer, ctx.signal.aborted]);
      if (e.data === 'no reason') (ctx.deadLetter as (r?: string) => void)();
      if (e.data === 'reason') ctx.deadLetter('stale');
    });
    assert.is(result.handled, 1);
    assert.equal(
      result.failed.map((f) => [f.id, f.error]),
      [
        [ids[1], 'dead-lettered by handler'],
        [ids[2], 'dead-lettered by handler: stale'],
      ],
    );
    assert.equal(contexts, Array(3).fill([1, '(replay)', '(replay)', false]));
  } finally {
    await bus.close();
  }
});

test.run();
