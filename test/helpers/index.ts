import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';

/** A name no other test or run uses: fresh topics and groups per test. */
export function uniq(prefix: string): string {
  return `${prefix}.${randomBytes(5).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until it is true; fails with `what` and the last value after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 10): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.unreachable(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(everyMs);
  }
}

/** Exact set comparison that names what is missing, extra, and delivered more than once. */
export function assertSameIds(actual: string[], expected: string[], what = 'ids'): void {
  const want = new Set(expected);
  const seen = new Map<string, number>();
  for (const id of actual) seen.set(id, (seen.get(id) ?? 0) + 1);
  const missing = expected.filter((id) => !seen.has(id));
  const extra = [...seen.keys()].filter((id) => !want.has(id));
  const twice = [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
  if (missing.length || extra.length || twice.length) {
    assert.unreachable(
      `${what}: ${missing.length} missing ${JSON.stringify(missing.slice(0, 5))}, ${extra.length} extra ${JSON.stringify(extra.slice(0, 5))}, ` +
        `${twice.length} more than once ${JSON.stringify(twice.slice(0, 5))} (of ${expected.length} expected, ${actual.length} received)`,
    );
  }
}

/** Asserts that `fn` rejects with an AgentbusError of `code` whose message contains each of `mentions`. */
export async function rejects(fn: () => unknown, code: string, ...mentions: string[]): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    const e = err as Error & { code?: string };
    assert.is(e.code, code, `expected code ${code}, got ${e.code}: ${e.message}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `message ${JSON.stringify(e.message)} should mention ${JSON.stringify(m)}`);
    return e;
  }
  assert.unreachable(`expected a rejection with code ${code}`);
  throw new Error('unreachable');
}
