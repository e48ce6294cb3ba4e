// The keyed owner's state cache on its own (bus/keyed/cache.ts): passivation past maxActiveKeys,
// in one pass down to 15/16 of the bound, never evicting a key in use.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KeyCache, type KeyEntry } from '../bus/keyed/cache.js';

const entry = (key: string, o: Partial<KeyEntry> = {}): KeyEntry => ({ key, version: 0, json: '{}', value: {}, applied: {}, appliedDelta: null, pins: 0, dirty: false, expiresAt: 0, noExpiry: false, inserted: 0, ...o });

test('past the bound, the oldest idle keys are evicted in one pass down to 15/16 of it; keys in use stay', () => {
  const c = new KeyCache(32);
  for (let i = 0; i < 32; i++) c.put(entry(`k${i}`, i === 0 ? { pins: 1 } : i === 1 ? { dirty: true } : {}));
  assert.is(c.size, 32, 'at the bound nothing is evicted');
  c.put(entry('k32'));
  assert.is(c.size, 30, '32 - floor(32 / 16)');
  assert.is(c.evictions, 3);
  for (const gone of ['k2', 'k3', 'k4']) assert.is(c.get(gone), undefined, `${gone} (oldest idle) evicted`);
  for (const kept of ['k0', 'k1', 'k5', 'k31', 'k32']) assert.ok(c.get(kept), `${kept} kept`);
});

test('a key used again is evicted after the keys put since; one used again while among the newest stays among them', () => {
  const c = new KeyCache(32);
  for (let i = 0; i < 32; i++) c.put(entry(`k${i}`));
  assert.ok(c.get('k0'), 'k0 used again: the oldest put, moved to the back');
  assert.ok(c.get('k30'), 'k30 used again: among the newest 32 / 4, left where it is');
  c.put(entry('k32'));
  for (const gone of ['k1', 'k2', 'k3']) assert.is(c.get(gone), undefined, `${gone} evicted`);
  for (const kept of ['k0', 'k4', 'k30', 'k32']) assert.ok(c.get(kept), `${kept} kept`);
});

test('200,000 keys through a 10,000-key cache cost about a microsecond a key, not a walk of the cache each', () => {
  // Evicting one key per put walked the Map's deleted slots from its front every time: about 22 us
  // a put at this size (4 s for this loop). The bound here is ten times what it takes now.
  const c = new KeyCache(10_000);
  const t = performance.now();
  for (let i = 0; i < 200_000; i++) c.put(entry(`key-${i}`));
  const ms = performance.now() - t;
  assert.ok(c.size <= 10_000, `${c.size} keys held`);
  assert.ok(ms < 2000, `200,000 puts took ${ms.toFixed(0)} ms`);
});

test.run();
