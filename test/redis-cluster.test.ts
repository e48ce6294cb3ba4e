// The whole conformance suite on a real three-master Redis Cluster, started by this file: topics
// land in different slots, so a subscription over several of them reads across nodes.
import { Cluster } from 'ioredis';
import { createRedisBus } from '../adapters/redis/index.js';
import { conformance } from './conformance/index.js';
import { hasRedisServer, startRedisCluster } from './helpers/redis.js';
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
    features: { sharedAcrossProcesses: true, foreignFieldEntries: true, countsConsumers: true },
    store: {
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
      consumerRecords: async (topic, group) => {
        const raw = new Cluster(nodes);
        const n = ((await raw.xinfo('CONSUMERS', `events:${topic}`, group)) as unknown[]).length;
        raw.disconnect();
        return n;
      },
    },
  });
}
