// The cron expressions of `static schedules` (runtime/cron.ts): the next tick as a table, time
// zones and DST, and refusals naming the field and the value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nextTick, parseCron } from '../runtime/cron.js';
import { checkSchedules, runSchedule } from '../runtime/schedules.js';
import type { Bus } from '../bus/contract.js';
import { AgentbusError } from '../bus/errors.js';

const next = (expr: string, after: string, tz?: string) => {
  const t = nextTick(parseCron(expr, tz, 'test'), Date.parse(after));
  return t === null ? null : new Date(t).toISOString();
};

test('next tick after a time, UTC: steps, ranges, lists, names, seconds, month and year ends', () => {
  const table: Array<[string, string, string | null]> = [
    ['*/5 * * * *', '2026-01-01T00:00:00.000Z', '2026-01-01T00:05:00.000Z'],
    ['*/5 * * * *', '2026-01-01T00:04:59.999Z', '2026-01-01T00:05:00.000Z'],
    ['*/5 * * * *', '2026-01-01T00:03:00.000Z', '2026-01-01T00:05:00.000Z'],
    ['0 * * * *', '2026-01-01T23:30:00.000Z', '2026-01-02T00:00:00.000Z'],
    ['30 9 * * 1-5', '2026-01-02T10:00:00.000Z', '2026-01-05T09:30:00.000Z'], // Friday after 9:30 -> Monday
    ['30 9 * * MON-FRI', '2026-01-02T10:00:00.000Z', '2026-01-05T09:30:00.000Z'],
    ['0 0 * * 7', '2026-01-01T00:00:00.000Z', '2026-01-04T00:00:00.000Z'], // 7 is Sunday
    ['0 0 1 * *', '2026-01-15T00:00:00.000Z', '2026-02-01T00:00:00.000Z'],
    ['0 0 31 * *', '2026-01-31T00:00:00.000Z', '2026-03-31T00:00:00.000Z'], // February has none
    ['0 0 1 1 *', '2026-06-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['0 0 29 2 *', '2026-03-01T00:00:00.000Z', '2028-02-29T00:00:00.000Z'],
    ['0 0 1 JAN,jul *', '2026-02-01T00:00:00.000Z', '2026-07-01T00:00:00.000Z'],
    ['0 12 1 * MON', '2026-01-01T13:00:00.000Z', '2026-01-05T12:00:00.000Z'], // either day field (Vixie)
    ['0 12 1 * MON', '2026-01-26T13:00:00.000Z', '2026-02-01T12:00:00.000Z'],
    ['5,10-12 * * * *', '2026-01-01T00:10:30.000Z', '2026-01-01T00:11:00.000Z'],
    ['10-30/10 * * * *', '2026-01-01T00:30:00.000Z', '2026-01-01T01:10:00.000Z'],
    ['50/5 * * * *', '2026-01-01T00:56:00.000Z', '2026-01-01T01:50:00.000Z'], // a/n: from a to the end
    ['*/2 * * * * *', '2026-01-01T00:00:01.500Z', '2026-01-01T00:00:02.000Z'],
    ['*/2 * * * * *', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:04.000Z'],
    ['15 0 0 * * *', '2026-01-01T00:00:15.000Z', '2026-01-02T00:00:15.000Z'],
    ['0 0 30 2 *', '2026-01-01T00:00:00.000Z', null], // never
  ];
  for (const [expr, after, want] of table) assert.is(next(expr, after), want, `${expr} after ${after}`);
});

test('time zones: wall-clock times in tz; a time the DST change skips does not fire that day, a repeated one fires once', () => {
  assert.is(next('0 9 * * *', '2026-01-01T00:00:00.000Z', 'Europe/Paris'), '2026-01-01T08:00:00.000Z');
  assert.is(next('0 9 * * *', '2026-07-01T00:00:00.000Z', 'Europe/Paris'), '2026-07-01T07:00:00.000Z');
  // Europe/Paris springs forward on 2026-03-29 at 02:00 (to 03:00): 02:30 does not exist that day.
  assert.is(next('30 2 * * *', '2026-03-28T12:00:00.000Z', 'Europe/Paris'), '2026-03-30T00:30:00.000Z');
  // It falls back on 2026-10-25 at 03:00 (to 02:00): 02:30 happens twice, fires at the first.
  const first = next('30 2 * * *', '2026-10-24T12:00:00.000Z', 'Europe/Paris');
  assert.is(first, '2026-10-25T00:30:00.000Z');
  assert.is(next('30 2 * * *', first!, 'Europe/Paris'), '2026-10-26T01:30:00.000Z');
  assert.is(next('*/5 * * * *', '2026-01-01T00:01:00.000Z', 'Asia/Kolkata'), '2026-01-01T00:05:00.000Z'); // +05:30
});

test('refused with INVALID_OPTION naming the field and the value', () => {
  const table: Array<[unknown, unknown, string]> = [
    ['* * * *', undefined, 'has 4 field(s): expected 5'],
    ['60 * * * *', undefined, 'minute field "60" has 60, outside 0-59'],
    ['* 24 * * *', undefined, 'hour field "24" has 24, outside 0-23'],
    ['* * 0 * *', undefined, 'day-of-month field "0" has 0, outside 1-31'],
    ['* * * 13 *', undefined, 'month field "13" has 13, outside 1-12'],
    ['* * * * 8', undefined, 'day-of-week field "8" has 8, outside 0-7'],
    ['* * * * FUN', undefined, 'day-of-week field "FUN" is not a number or a name'],
    ['*/0 * * * *', undefined, 'minute field "*/0" has a step of 0'],
    ['5-1 * * * *', undefined, 'minute field "5-1" has the range 5-1 backwards'],
    ['L * * * *', undefined, 'minute field "L" is not a number'],
    ['@daily', undefined, 'has 1 field(s)'],
    [5, undefined, 'cron 5 must be a string'],
    ['* * * * *', 'Mars/Olympus', 'tz "Mars/Olympus" is not a time zone'],
  ];
  for (const [expr, tz, msg] of table) {
    try {
      parseCron(expr, tz, 'Clock schedule 0');
      assert.unreachable(String(expr));
    } catch (err) {
      assert.instance(err, AgentbusError);
      assert.is((err as AgentbusError).code, 'INVALID_OPTION');
      assert.ok((err as Error).message.startsWith('Clock schedule 0: '), (err as Error).message);
      assert.ok((err as Error).message.includes(msg), `${(err as Error).message} should include ${msg}`);
    }
  }
});

test('static schedules: every or cron, not both; tz only with cron; a cron that never fires is refused; ticks of every are unchanged', () => {
  const bad: Array<[unknown, string]> = [
    [[{ every: '1s', cron: '* * * * *', type: 'a.b' }], 'takes one of every or cron'],
    [[{ type: 'a.b' }], 'takes one of every or cron'],
    [[{ every: '1m', tz: 'UTC', type: 'a.b' }], 'tz goes with cron'],
    [[{ cron: '0 0 30 2 *', type: 'a.b' }], 'never fires'],
  ];
  for (const [v, msg] of bad) assert.throws(() => checkSchedules('Clock', v), (e: Error) => e.message.includes(msg));
  const [every, cron] = checkSchedules('Clock', [{ every: '5m', type: 'a.b' }, { cron: '*/5 * * * *', type: 'a.b', tz: 'Europe/Paris' }]);
  assert.is(every.next(Date.parse('2026-01-01T00:03:00Z')), Date.parse('2026-01-01T00:05:00Z'));
  assert.is(every.beat, 300_000, 'the tick id of every keeps its old parts');
  assert.is(cron.next(Date.parse('2026-01-01T00:03:00Z')), Date.parse('2026-01-01T00:05:00Z'));
  assert.is(cron.beat, 'cron */5 * * * * Europe/Paris');
});

test('a beat longer than a Node timer holds (24.8 days) stores its tick once and waits, instead of firing its timer at once and storing again every millisecond', async () => {
  const published: unknown[] = [];
  const bus = { publish: async (_t: string, _d: unknown, o: unknown) => (published.push(o), 'id') } as unknown as Bus;
  const far = new Date(Date.now() + 100 * 86_400_000); // once a year, 100 days from now
  const [yearly] = checkSchedules('Clock', [{ cron: `0 0 ${far.getUTCDate()} ${far.getUTCMonth() + 1} *`, type: 'a.b' }]);
  const stop = runSchedule(bus, 'Clock', yearly, () => {});
  await new Promise((r) => setTimeout(r, 200));
  stop();
  assert.is(published.length, 1, `${published.length} publishes in 200 ms`);
});

test.run();
