import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkPattern, checkType, createEvent, decodeEvent, encodeEvent, matches } from '../bus/event.js';
import { ValidationError } from '../bus/errors.js';

const throwsCode = (fn: () => unknown, code: string, mention: string) => {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ValidationError);
    assert.is((err as ValidationError).code, code);
    assert.ok((err as Error).message.includes(mention), (err as Error).message);
    return;
  }
  assert.unreachable(`expected ${code}`);
};

test('event types: allowed characters and length', () => {
  for (const ok of ['a', 'device.validated', 'verification_stream', 'a:b-c.d_9', 'x'.repeat(200)]) checkType(ok);
  throwsCode(() => checkType(''), 'INVALID_TYPE', '""');
  throwsCode(() => checkType('.lead'), 'INVALID_TYPE', '".lead"');
  throwsCode(() => checkType('a b'), 'INVALID_TYPE', '"a b"');
  throwsCode(() => checkType('x'.repeat(201)), 'INVALID_TYPE', '1-200');
  throwsCode(() => checkType(42), 'INVALID_TYPE', '42');
});

test('patterns: one trailing * after a prefix, or * alone', () => {
  for (const ok of ['*', 'device.*', 'device*', 'device.a']) checkPattern(ok);
  throwsCode(() => checkPattern('a*b'), 'INVALID_TYPE', 'a*b');
  throwsCode(() => checkPattern('a.**'), 'INVALID_TYPE', 'a.**');
  assert.ok(matches('device.*', 'device.a.b'));
  assert.not.ok(matches('device.*', 'devices.a'));
  assert.ok(matches('*', 'anything'));
  assert.not.ok(matches('device.a', 'device.ab'));
});

test('createEvent fills the envelope; only given optional fields are set', () => {
  const e = createEvent('t', { a: 1 }, { subject: 's1' }, '/src');
  assert.is(e.specversion, '1.0');
  assert.is(e.source, '/src');
  assert.is(e.subject, 's1');
  assert.ok(/^[0-9a-f-]{36}$/.test(e.id));
  assert.not.ok('traceparent' in e);
  assert.is(createEvent('t', 1, { id: 'mine' }, '/s').id, 'mine');
  throwsCode(() => createEvent('t', 1, { id: '' }, '/s'), 'INVALID_OPTION', '""');
});

test('createEvent refuses fields consumers would refuse or that are not strings, naming the field and the limit', () => {
  throwsCode(() => createEvent('t', 1, { source: '' }, '/s'), 'INVALID_OPTION', 'invalid source ""');
  throwsCode(() => createEvent('t', 1, { source: 42 as never }, '/s'), 'INVALID_OPTION', 'invalid source 42: expected a string of 1-1000 characters');
  throwsCode(() => createEvent('t', 1, { source: 'x'.repeat(1001) }, '/s'), 'INVALID_OPTION', '(1001 characters)');
  throwsCode(() => createEvent('t', 1, { id: 'x'.repeat(257) }, '/s'), 'INVALID_OPTION', '1-256');
  throwsCode(() => createEvent('t', 1, { subject: 7 as never }, '/s'), 'INVALID_OPTION', 'invalid subject 7: expected a non-empty string');
  throwsCode(() => createEvent('t', 1, { subject: '' }, '/s'), 'INVALID_OPTION', 'invalid subject ""');
  throwsCode(() => createEvent('t', 1, { traceparent: {} as never }, '/s'), 'INVALID_OPTION', 'invalid traceparent {}');
  throwsCode(() => createEvent('t', 1, { dataschema: null as never }, '/s'), 'INVALID_OPTION', 'invalid dataschema null');
  throwsCode(() => createEvent('t', 1, { datacontenttype: 1n as never }, '/s'), 'INVALID_OPTION', 'invalid datacontenttype 1');
  throwsCode(() => createEvent('t', 1, { time: 'yesterday' }, '/s'), 'INVALID_OPTION', 'invalid time "yesterday": expected an ISO-8601 time string');
  throwsCode(() => createEvent('t', 1, { time: Date.now() as never }, '/s'), 'INVALID_OPTION', 'invalid time');
  const e = createEvent('t', 1, { source: '/mine', time: '2026-11-01T10:00:00Z', subject: 's', datacontenttype: 'application/json' }, '/s');
  assert.equal([e.source, e.time, e.subject, e.datacontenttype], ['/mine', '2026-11-01T10:00:00Z', 's', 'application/json']);
});

test('encodeEvent enforces the byte limit in UTF-8, naming the type and the limit', () => {
  const e = createEvent('big', 'é'.repeat(400), undefined, '/s'); // 800 bytes of data, 400 UTF-16 units
  throwsCode(() => encodeEvent(e, 600), 'PAYLOAD_TOO_LARGE', 'limit (maxPayloadBytes) is 600');
  assert.ok(encodeEvent(e, 2000).length > 400);
  throwsCode(() => encodeEvent(createEvent('u', { n: 1n }, undefined, '/s'), 1000), 'INVALID_OPTION', 'not JSON-serializable');
});

test('decodeEvent: invalid JSON and missing fields are described, valid envelopes returned', () => {
  assert.ok((decodeEvent('{bad') as string).startsWith('invalid JSON'));
  assert.is(decodeEvent('[1]'), 'not a JSON object');
  assert.is(decodeEvent('{"id":"1","type":"t"}'), 'missing or empty "source"');
  const ok = decodeEvent('{"id":"1","type":"t","source":"s"}');
  assert.equal(ok, { id: '1', type: 't', source: 's', specversion: '1.0', time: new Date(0).toISOString(), data: null });
});

test.run();
