// Replies keep no dedup marker (bus/requests.ts replyOptions): the requester drops a second reply to
// a request already answered, so a marker per reply for the dedup window (an hour by default) would
// only grow the store with the request rate. Checked in each store's own terms: Redis' dedup keys,
// SQLite's dedup table.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRedisBus } from '../adapters/redis/index.js';
import { createSqliteBus } from '../adapters/sqlite/index.js';
import type { Bus } from '../bus/contract.js';
import { uniq } from './helpers/index.js';
import { redisForTests } from './helpers/redis.js';

const logger = pino({ level: 'silent' });
const redis = await redisForTests('request markers');

/** 20 requests answered, then a publish under a caller id (which keeps its marker): the markers the store holds. */
async function markersAfterRequests(requester: Bus, replier: Bus, count: () => Promise<number>): Promise<{ afterRequests: number; afterIdPublish: number }> {
  const type = uniq('ask');
  const sub = await replier.subscribe({ group: uniq('g'), types: [type], concurrency: 8 }, (e) => e.data);
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => requester.request(type, { i }, { timeoutMs: 10_000 })));
  assert.equal(replies, Array.from({ length: 20 }, (_, i) => ({ i })));
  const afterRequests = await count();
  await requester.publish(uniq('plain'), {}, { id: uniq('caller-id') });
  const afterIdPublish = await count();
  await sub.close();
  return { afterRequests, afterIdPublish };
}

test('SQLite: 20 requests answered leave no row in the dedup table; a publish with a caller id still leaves one', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'agentbus-markers-')), 'bus.db');
  const [requester, replier] = [await createSqliteBus({ path, logger }), await createSqliteBus({ path, logger })];
  const db = new Database(path, { readonly: true });
  const n = await markersAfterRequests(requester, replier, async () => (db.prepare('SELECT count(*) AS n FROM dedup').get() as { n: number }).n);
  assert.equal(n, { afterRequests: 0, afterIdPublish: 1 });
  db.close();
  await requester.close();
  await replier.close();
});

if (redis) {
  test('Redis: 20 requests answered leave no dedup key; a publish with a caller id still leaves one', async () => {
    const prefix = `${uniq('markers')}:`;
    const [requester, replier] = [await createRedisBus({ url: redis.url, prefix, logger }), await createRedisBus({ url: redis.url, prefix, logger })];
    const admin = new Redis(redis.url);
    const count = async () => {
      let n = 0;
      for await (const keys of admin.scanStream({ match: `*${prefix}*:dedup:*`, count: 1000 })) n += (keys as string[]).length;
      return n;
    };
    const n = await markersAfterRequests(requester, replier, count);
    assert.equal(n, { afterRequests: 0, afterIdPublish: 1 });
    admin.disconnect();
    await requester.close();
    await replier.close();
  });
}

test.after(async () => {
  await redis?.server?.stop();
});

test.run();
