// The failure reply of a dead-lettered request fits the bus' maxPayloadBytes whatever the reason's
// and the error's length (else it was refused, and the requester waited out its timeoutMs).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import { RequestFailedError } from '../index.js';
import { fitBytes } from '../bus/requests.js';

test('fitBytes cuts on a character boundary within the byte limit, and marks the cut', () => {
  const cut = fitBytes('é'.repeat(1990), 101);
  assert.ok(Buffer.byteLength(cut) <= 101, `${Buffer.byteLength(cut)} bytes`);
  assert.ok(cut.endsWith('...'));
  assert.is(cut.slice(0, -3), 'é'.repeat(49));
  assert.is(fitBytes('short', 100), 'short');
  assert.is(fitBytes('😀😀😀', 9), '😀...', 'a surrogate pair is never split');
});

test('a long ctx.deadLetter reason and a long multibyte error still fail the request at once (RequestFailedError), cut to fit maxPayloadBytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentbus-reqfail-'));
  const bus = await createSqliteBus({ path: join(dir, 'b.db'), maxPayloadBytes: 4096, logger: pino({ level: 'silent' }) });
  try {
    await bus.subscribe({ group: 'tool', types: ['tool.reason', 'tool.error'], maxAttempts: 1 }, (e, ctx) => {
      if (e.type === 'tool.reason') return void ctx.deadLetter('r'.repeat(5000));
      throw new Error('é'.repeat(1990));
    });
    for (const type of ['tool.reason', 'tool.error']) {
      const started = Date.now();
      const err = await bus.request(type, 1, { timeoutMs: 20_000 }).then(() => null, (x: unknown) => x);
      assert.ok(err instanceof RequestFailedError, `${type}: got ${String(err)}`);
      assert.ok(Date.now() - started < 10_000, 'at once, not at timeoutMs');
      assert.ok(Buffer.byteLength(err.reason) + Buffer.byteLength(err.error) < 4096 / 2, `${type}: cut (${err.reason.length}, ${err.error.length})`);
    }
  } finally {
    await bus.close();
  }
});

test.run();
