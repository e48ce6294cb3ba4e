import { hostProcessSuite } from './host-process.js';
import { redisForTests } from './helpers/redis.js';

const redis = await redisForTests('host processes on redis');
if (redis) hostProcessSuite('redis', { AGENTBUS_ADAPTER: 'redis', REDIS_URL: redis.url });
