// One host process of the scale-out bench (bench/scale.ts): connects to the store, says {"ready":1},
// subscribes when the parent writes a line on stdin, and reports on stdout as JSON lines:
// {"n": handled so far, "last": monotonic ms of the last handler call, "cpuMs": this process' CPU
// time since the go line} every 100 ms, and when stdin
// closes, {"done": 1, "n", "cpuMs": this process' CPU time from the go line to the closed bus,
// "lat": [publish -> handler ms of each event that carried a stamp]}.
// Keyed: one subscription (key: 'subject') per group named in `groups`, each reading and writing
// its key's state; plain: one subscription of group `groups[0]` on every topic.
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { createRedisBus } from '../adapters/redis/index.js';
import type { Subscription } from '../bus/contract.js';
import type { KeyedDeliveryContext } from '../bus/keyed/contract.js';
import { nowMs } from './util.js';

interface Args {
  url?: string;
  cluster?: { host: string; port: number }[];
  /** Plain: every topic, one group. Keyed: topics[i] is read by groups[i]. */
  topics: string[];
  groups: string[];
  keyed: boolean;
  from: 'earliest' | 'latest';
}

const a = JSON.parse(process.argv[2]) as Args;
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const bus = await createRedisBus({ ...(a.cluster ? { cluster: a.cluster } : { url: a.url }), logger: pino({ level: 'silent' }) });

let n = 0;
let last = 0;
const lat: number[] = [];
const handle = (data: unknown) => {
  const t = (data as { t?: number }).t;
  last = nowMs();
  if (t !== undefined) lat.push(last - t);
  n++;
};

const lines = createInterface({ input: process.stdin });
const subs: Subscription[] = [];
let timer: NodeJS.Timeout | undefined;
say({ ready: 1 });
let cpu0 = process.cpuUsage();
const cpuMs = () => {
  const c = process.cpuUsage(cpu0);
  return (c.user + c.system) / 1000;
};
lines.once('line', async () => {
  cpu0 = process.cpuUsage();
  if (a.keyed) {
    for (const [i, group] of a.groups.entries()) {
      subs.push(await bus.subscribe({ group, types: [a.topics[i]], from: a.from, concurrency: 64, key: 'subject' }, (e, ctx) => {
        const k = ctx as KeyedDeliveryContext<{ n: number } | null>;
        k.state = { n: (k.state?.n ?? 0) + 1 };
        handle(e.data);
      }));
    }
  } else {
    subs.push(await bus.subscribe({ group: a.groups[0], types: a.topics, from: a.from, concurrency: 64 }, (e) => handle(e.data)));
  }
  timer = setInterval(() => say({ n, last, cpuMs: cpuMs() }), 100);
  say({ subscribed: 1 });
});
lines.once('close', async () => {
  clearInterval(timer);
  say({ n, last, cpuMs: cpuMs() });
  await Promise.all(subs.map((s) => s.close()));
  await bus.close();
  // Exits once the line is written: a pipe is written asynchronously, and exit() would cut it short.
  process.stdout.write(`${JSON.stringify({ done: 1, n, cpuMs: cpuMs(), lat: lat.map((x) => Math.round(x * 1000) / 1000) })}\n`, () => process.exit(0));
});
