// The whole conformance suite on a real three-master Redis Cluster, started by this file: topics
// land in different slots, so a subscription over several of them reads across nodes.
import { Cluster } from 'ioredis';
import { createRedisBus } from '../adapters/redis/index.js';
import { randomBytes } from 'node:crypto';
import type { Bus } from '../bus/contract.js';
import { conformance, quiet } from './conformance/index.js';
import { countDueCommands, hasRedisServer, redisStateStore, startRedisCluster } from './helpers/redis.js';
import { suite } from 'uvu';

if (!hasRedisServer()) {
  if (process.env.AGENTBUS_REQUIRE_REDIS === '1') throw new Error('redis cluster conformance: no redis-server on PATH (AGENTBUS_REQUIRE_REDIS=1)');
  const t = suite('redis cluster conformance');
  t.skip('no redis-server on PATH', () => {});
  t.run();
  console.log('SKIPPED redis cluster conformance: no redis-server on PATH');
} else {
  const { nodes } = await startRedisCluster(3);
  const cluster = nodes.map((n) => `${n.host}:${n.port}`);
  conformance({
    name: 'redis-cluster',
    create: (o) => createRedisBus({ ...o, cluster }),
    features: { sharedAcrossProcesses: true, foreignFieldEntries: true, countsConsumers: true, countsDueQueries: true },
    store: {
      stateStore: () => redisStateStore({ nodes }),
      injectMalformed: async (topic) => {
        const raw = new Cluster(nodes);
        await raw.xadd(`events:${topic}`, '*', 'type', topic, 'data', '{not json');
        raw.disconnect();
      },
      injectEnvelope: async (topic, envelope) => {
        const raw = new Cluster(nodes);
        await raw.xadd(`events:${topic}`, '*', 'event', envelope);
        raw.disconnect();
      },
      injectFields: async (topic, fields) => {
        const raw = new Cluster(nodes);
        await raw.xadd(`events:${topic}`, '*', ...fields);
        raw.disconnect();
      },
      processOptions: { adapter: 'redis', cluster },
      dueQueries: async (o) => {
        const prefix = `dq${randomBytes(4).toString('hex')}:`;
        const counter = await countDueCommands(nodes.map((n) => `redis://${n.host}:${n.port}`), prefix);
        const bus = await createRedisBus({ ...o, cluster, prefix, logger: quiet }).catch(async (err: unknown) => {
          await counter.stop();
          throw err;
        });
        const others: Bus[] = [];
        const another = async () => (others.push(await createRedisBus({ cluster, prefix, logger: quiet })), others.at(-1)!);
        return { bus, count: counter.count, another, close: async () => (await Promise.all([bus, ...others].map((b) => b.close())), await counter.stop()) };
      },
      consumerRecords: async (topic, group) => {
        const raw = new Cluster(nodes);
        const n = ((await raw.xinfo('CONSUMERS', `events:${topic}`, group)) as unknown[]).length;
        raw.disconnect();
        return n;
      },
    },
  });
}
