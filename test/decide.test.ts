// The delivery decision (bus/decide.ts) as a table: each row an arrival or a settled handler call,
// and what becomes of it. No store, no bus: the function is pure (random is fixed for the jitter).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { onArrival, onSettled, type Arrival, type Decision, type RetryPolicy, type Settled } from '../bus/decide.js';
import { NonRetryableError, RetryLaterError, TimeoutError } from '../bus/errors.js';

const policy: RetryPolicy = { maxAttempts: 3, backoff: { initialMs: 100, maxMs: 1000, factor: 2 } };
/** random() = 1: the jitter adds its whole half, so the delay is the full exponential step. */
const one = () => 1;

const arrivals: Array<[string, Arrival, Decision]> = [
  ['a decoded event on its first delivery runs', { attempts: 1, event: {} }, { act: 'run' }],
  ['a redelivery within maxAttempts runs', { attempts: 3, event: {} }, { act: 'run' }],
  [
    'past maxAttempts (its consumer stopped renewing its lease) it is given up on as failed, counting deliveries as the dead letter\'s attempts do',
    { attempts: 4, event: {} },
    {
      act: 'dead_letter',
      reason: 'failed',
      error: 'delivered 4 times (maxAttempts 3), not run again: the consumer of delivery 3 stopped renewing its lease (it crashed, or was stopped before it finished)',
    },
  ],
  [
    'further past maxAttempts: the count is the deliveries, whatever maxAttempts is',
    { attempts: 6, event: {} },
    {
      act: 'dead_letter',
      reason: 'failed',
      error: 'delivered 6 times (maxAttempts 3), not run again: the consumer of delivery 5 stopped renewing its lease (it crashed, or was stopped before it finished)',
    },
  ],
  ['an entry that could not be decoded is malformed, with why', { attempts: 1, event: null, malformed: 'not JSON' }, { act: 'dead_letter', reason: 'malformed', error: 'not JSON' }],
  ['an undecoded entry without a reason still says malformed', { attempts: 1, event: null }, { act: 'dead_letter', reason: 'malformed', error: 'malformed entry' }],
  ['an oversize entry is oversize', { attempts: 1, event: null, oversize: true, malformed: '2000000 bytes' }, { act: 'dead_letter', reason: 'oversize', error: '2000000 bytes' }],
  ['undecodable wins over too many attempts', { attempts: 9, event: null, malformed: 'x' }, { act: 'dead_letter', reason: 'malformed', error: 'x' }],
];

for (const [name, arrival, want] of arrivals) {
  test(`arrival: ${name}`, () => assert.equal(onArrival(arrival, policy.maxAttempts), want));
}

const boom = new Error('boom');
const fatal = new NonRetryableError('bad input');
const settled = (s: Partial<Settled>): Settled => ({ attempts: 1, threw: false, error: undefined, deadLetterReason: undefined, ...s });

const outcomes: Array<[string, Settled, Decision | ((d: Decision) => void)]> = [
  ['resolved: acknowledged', settled({}), { act: 'ack' }],
  ['resolved on the last attempt: acknowledged', settled({ attempts: 3 }), { act: 'ack' }],
  ['resolved after ctx.deadLetter: a dead letter with its reason and no error', settled({ deadLetterReason: 'no_handler' }), { act: 'dead_letter', reason: 'no_handler', error: '' }],
  ['threw on attempt 1: retried after the first backoff step', settled({ threw: true, error: boom }), { act: 'retry', delayMs: 100 }],
  ['threw on attempt 2: retried after the second step', settled({ attempts: 2, threw: true, error: boom }), { act: 'retry', delayMs: 200 }],
  ['threw a non-Error: retried all the same', settled({ threw: true, error: 'just a string' }), { act: 'retry', delayMs: 100 }],
  [
    'threw on the last attempt: a dead letter failed, with the error and its stack',
    settled({ attempts: 3, threw: true, error: boom }),
    (d) => assert.equal(d, { act: 'dead_letter', reason: 'failed', error: 'Error: boom', stack: boom.stack }),
  ],
  [
    'threw past the last attempt (a dead letter retried by hand): failed',
    settled({ attempts: 7, threw: true, error: boom }),
    (d) => assert.equal([d.act, d.act === 'dead_letter' && d.reason], ['dead_letter', 'failed']),
  ],
  [
    'threw a NonRetryableError on attempt 1: non_retryable at once',
    settled({ threw: true, error: fatal }),
    (d) => assert.equal(d, { act: 'dead_letter', reason: 'non_retryable', error: 'NonRetryableError: bad input', stack: fatal.stack }),
  ],
  [
    'threw after calling ctx.deadLetter: the throw wins',
    settled({ threw: true, error: boom, deadLetterReason: 'ignored' }),
    { act: 'retry', delayMs: 100 },
  ],
  [
    'threw a value with no stack on the last attempt: failed, no stack',
    settled({ attempts: 3, threw: true, error: 42 }),
    { act: 'dead_letter', reason: 'failed', error: '42', stack: undefined },
  ],
];

for (const [name, s, want] of outcomes) {
  test(`settled: ${name}`, () => {
    const got = onSettled(s, policy, one);
    if (typeof want === 'function') want(got);
    else assert.equal(got, want);
  });
}

test('settled: the retry delay is capped by backoff.maxMs and keeps half of it fixed (jitter)', () => {
  const many = { ...policy, maxAttempts: 100 };
  assert.equal(onSettled(settled({ attempts: 20, threw: true, error: boom }), many, one), { act: 'retry', delayMs: 1000 });
  assert.equal(onSettled(settled({ attempts: 20, threw: true, error: boom }), many, () => 0), { act: 'retry', delayMs: 500 });
});

test('settled: a revoked Proxy thrown is described, never thrown again', () => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  const d = onSettled(settled({ attempts: 3, threw: true, error: proxy }), policy, one);
  assert.is(d.act, 'dead_letter');
  assert.match((d as { error: string }).error, /not convertible to a string/);
});


test('settled: RetryLaterError sets the delay of the next attempt; ctx.retryIn fails a resolved attempt with its delay; both end at maxAttempts', () => {
  const policy = { maxAttempts: 3, backoff: { initialMs: 5000, maxMs: 5000, factor: 2 } };
  assert.equal(onSettled({ attempts: 1, threw: true, error: new RetryLaterError(250), deadLetterReason: undefined }, policy), { act: 'retry', delayMs: 250 });
  assert.equal(onSettled({ attempts: 1, threw: false, error: undefined, deadLetterReason: undefined, retryInMs: 40 }, policy), { act: 'retry', delayMs: 40 });
  assert.is(onSettled({ attempts: 3, threw: true, error: new RetryLaterError(250), deadLetterReason: undefined }, policy).act, 'dead_letter');
  assert.is(onSettled({ attempts: 3, threw: false, error: undefined, deadLetterReason: undefined, retryInMs: 40 }, policy).act, 'dead_letter');
  assert.equal(onSettled({ attempts: 1, threw: true, error: new TimeoutError('late'), deadLetterReason: undefined }, policy, () => 0), { act: 'retry', delayMs: 2500 });
});

test.run();
