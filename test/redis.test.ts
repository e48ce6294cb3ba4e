import { Redis } from 'ioredis';
import { createRedisBus } from '../adapters/redis/index.js';
import { randomBytes } from 'node:crypto';
import type { Bus } from '../bus/contract.js';
import { conformance, quiet } from './conformance/index.js';
import { countDueCommands, redisForTests, redisStateStore } from './helpers/redis.js';

const redis = await redisForTests('redis conformance');
if (redis) {
  const { url } = redis;
  conformance({
    name: 'redis',
    create: (o) => createRedisBus({ ...o, url }),
    features: { sharedAcrossProcesses: true, foreignFieldEntries: true, countsConsumers: true, countsDueQueries: true },
    store: {
      stateStore: () => redisStateStore({ url }),
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
      dueQueries: async (o) => {
        const prefix = `dq${randomBytes(4).toString('hex')}:`;
        const counter = await countDueCommands([url], prefix);
        const bus = await createRedisBus({ ...o, url, prefix, logger: quiet }).catch(async (err: unknown) => {
          await counter.stop();
          throw err;
        });
        const others: Bus[] = [];
        const another = async () => (others.push(await createRedisBus({ url, prefix, logger: quiet })), others.at(-1)!);
        return { bus, count: counter.count, another, close: async () => (await Promise.all([bus, ...others].map((b) => b.close())), await counter.stop()) };
      },
      consumerRecords: async (topic, group) => {
        const raw = new Redis(url);
        const n = ((await raw.xinfo('CONSUMERS', `events:${topic}`, group)) as unknown[]).length;
        raw.disconnect();
        return n;
      },
    },
  });
}
