import { Redis } from 'ioredis';
import { createRedisBus } from '../adapters/redis/index.js';
import { conformance } from './conformance/index.js';
import { redisForTests } from './helpers/redis.js';

const redis = await redisForTests('redis conformance');
if (redis) {
  const { url } = redis;
  conformance({
    name: 'redis',
    create: (o) => createRedisBus({ ...o, url }),
    features: { sharedAcrossProcesses: true, foreignFieldEntries: true, countsConsumers: true },
    store: {
      // A foreign producer's entry whose "data" field is not JSON.
      injectMalformed: async (topic) => {
        const raw = new Redis(url);
        await raw.xadd(`events:${topic}`, '*', 'type', topic, 'data', '{not json');
        raw.disconnect();
      },
      injectEnvelope: async (topic, envelope) => {
        const raw = new Redis(url);
        await raw.xadd(`events:${topic}`, '*', 'event', envelope);
        raw.disconnect();
      },
      injectFields: async (topic, fields) => {
        const raw = new Redis(url);
        await raw.xadd(`events:${topic}`, '*', ...fields);
        raw.disconnect();
      },
      processOptions: { adapter: 'redis', url },
      consumerRecords: async (topic, group) => {
        const raw = new Redis(url);
        const n = ((await raw.xinfo('CONSUMERS', `events:${topic}`, group)) as unknown[]).length;
        raw.disconnect();
        return n;
      },
    },
  });
}
