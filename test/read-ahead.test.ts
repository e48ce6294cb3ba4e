import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAST_HANDLER_MS, ReadAhead } from '../bus/read-ahead.js';

test('a readAhead given is kept whatever the handlers take', () => {
  const r = new ReadAhead(5, 4);
  assert.is(r.adaptive, false);
  r.observe(10_000);
  assert.is(r.ahead, 5);
});

test('unset: none until a call is measured, 2 x concurrency while calls average under FAST_HANDLER_MS, none while slower', () => {
  const r = new ReadAhead(undefined, 4);
  assert.is(r.adaptive, true);
  assert.is(r.ahead, 0, 'nothing measured yet');
  r.observe(1);
  assert.is(r.ahead, 8);
  for (let i = 0; i < 40; i++) r.observe(5_000); // the handler turned into an LLM call
  assert.is(r.ahead, 0);
  for (let i = 0; i < 200; i++) r.observe(FAST_HANDLER_MS / 4);
  assert.is(r.ahead, 8, 'fast again: the average came back down');
});

test('unset on a store whose reads cost no round trip (SQLite): none, whatever the handlers take', () => {
  const r = new ReadAhead(undefined, 4, false);
  assert.is(r.adaptive, false);
  r.observe(1);
  assert.is(r.ahead, 0);
  assert.is(new ReadAhead(6, 4, false).ahead, 6, 'a number still counts');
});

test('one slow call among fast ones moves the average, not past the bound at once', () => {
  const r = new ReadAhead(undefined, 2);
  for (let i = 0; i < 50; i++) r.observe(1);
  r.observe(100); // 1 + 99/16: about 7 ms
  assert.is(r.ahead, 4);
  r.observe(100);
  assert.is(r.ahead, 0);
});

test.run();
