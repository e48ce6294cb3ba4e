import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CircuitBreaker } from '../runtime/breaker.js';
import { CircuitOpenError } from '../bus/errors.js';

const fail = () => Promise.reject(new Error('downstream down'));

test('opens per key after N failures in a row, fails fast without calling, other keys unaffected', async () => {
  let t = 0;
  const b = new CircuitBreaker({ failures: 3, resetMs: 1000, now: () => t });
  let calls = 0;
  const down = () => (calls++, fail());
  for (let i = 0; i < 3; i++) await b.run('jira', down).catch(() => {});
  assert.is(b.state('jira'), 'open');
  const err = await b.run('jira', down).catch((e: unknown) => e);
  assert.instance(err, CircuitOpenError);
  assert.is((err as CircuitOpenError).code, 'CIRCUIT_OPEN');
  assert.is(calls, 3, 'the open circuit did not call');
  assert.is(await b.run('slack', () => 'ok'), 'ok');
  assert.is(b.state('slack'), 'closed');
});

test('a success resets the count; after resetMs one trial runs: success closes, failure reopens', async () => {
  let t = 0;
  const b = new CircuitBreaker({ failures: 2, resetMs: 1000, now: () => t });
  await b.run('k', fail).catch(() => {});
  await b.run('k', () => 1);
  await b.run('k', fail).catch(() => {});
  assert.is(b.state('k'), 'closed', 'not two in a row');
  await b.run('k', fail).catch(() => {});
  assert.is(b.state('k'), 'open');
  t = 999;
  assert.is(b.state('k'), 'open');
  t = 1000;
  assert.is(b.state('k'), 'half-open');
  let release!: () => void;
  const trial = b.run('k', () => new Promise<void>((r) => (release = r)));
  assert.instance(await b.run('k', () => 1).catch((e: unknown) => e), CircuitOpenError, 'one trial at a time');
  release();
  await trial;
  assert.is(b.state('k'), 'closed');
  await b.run('k', fail).catch(() => {});
  await b.run('k', fail).catch(() => {});
  t = 3000;
  await b.run('k', fail).catch(() => {});
  assert.is(b.state('k'), 'open', 'a failed trial opens it again');
});

test('bad options name the option and the limit', () => {
  assert.throws(() => new CircuitBreaker({ failures: 0 }), /invalid failures 0: expected an integer from 1/);
  assert.throws(() => new CircuitBreaker({ reset: 5 } as never), /unknown circuit breaker option "reset"/);
});

test.run();
