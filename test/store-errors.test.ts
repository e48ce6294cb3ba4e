import { Writable } from 'node:stream';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Driver } from '../bus/driver.js';
import { resolveSubscribeOptions } from '../bus/options.js';
import { Outcomes } from '../bus/outcomes.js';

test('a store error of one kind is logged once, repeats within STORE_ERROR_QUIET_MS are not (an outage fails a topic refresh every 100 ms); another kind is logged', () => {
  const lines: Array<{ msg: string }> = [];
  const logger = pino({ level: 'error' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  const out = new Outcomes({} as Driver, resolveSubscribeOptions({ group: 'g', types: ['t'] }), logger);
  for (let i = 0; i < 50; i++) out.storeError('topic refresh', new Error('Connection is closed.'));
  out.storeError('ack', new Error('Connection is closed.'));
  assert.equal(lines.map((l) => l.msg), ['store error during topic refresh', 'store error during ack']);
});

test.run();
