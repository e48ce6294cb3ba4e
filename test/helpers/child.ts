// A bus user in its own process, driven by the parent test through argv and stdout lines:
//   publish: publishes `count` events of `type` in batches, printing "pub <id>", then "done"
//   consume: subscribes `group`, printing "got <id> <attempt>" after each handled event
//   hang:    like consume, but handlers never finish (a process to kill with events in flight)
//   count:   a keyed subscription (key: subject) appending each event's data.n to its key's state
//            ({ seq: [...] }), printing "got <id> <attempt>" (a keyed counter agent)
//   respond: answers each request of `type` with { n: data.n * 2, pid }
//   delay:   publishes `count` events of `type` with delay `delayMs`, printing "due <epoch ms>" (the
//            earliest due time), "pub <id>" per event, then "published"; stays open, its bus
//            moving due entries, until killed
// It prints "ready" once subscribed; SIGTERM closes the bus (draining) and exits 0.
import { pino } from 'pino';
import { createBus } from '../../runtime/config.js';

const cfg = JSON.parse(process.argv[2]) as {
  bus: Record<string, unknown>;
  role: 'publish' | 'consume' | 'hang' | 'count' | 'respond' | 'delay';
  type: string;
  group?: string;
  count?: number;
  concurrency?: number;
  claimIdleMs?: number;
  delayMs?: number;
};
const bus = await createBus({ ...(cfg.bus as object), logger: pino({ level: 'warn' }, pino.destination(2)) });
const out = (line: string) => process.stdout.write(line + '\n');
process.on('SIGTERM', () => void bus.close().then(() => process.exit(0)));

if (cfg.role === 'publish') {
  for (let i = 0; i < cfg.count!; i += 50) {
    const ids = await bus.publishBatch(Array.from({ length: Math.min(50, cfg.count! - i) }, (_, j) => ({ type: cfg.type, data: { n: i + j } })));
    out(ids.map((id) => `pub ${id}`).join('\n'));
    await new Promise((r) => setTimeout(r, 2));
  }
  await bus.close();
  out('done');
} else if (cfg.role === 'respond') {
  await bus.subscribe({ group: cfg.group!, types: [cfg.type], concurrency: cfg.concurrency ?? 8 }, (e) => ({ n: (e.data as { n: number }).n * 2, pid: process.pid }));
  out('ready');
} else if (cfg.role === 'delay') {
  out(`due ${Date.now() + cfg.delayMs!}`);
  for (let i = 0; i < cfg.count!; i += 100) {
    const ids = await bus.publishBatch(Array.from({ length: Math.min(100, cfg.count! - i) }, (_, j) => ({ type: cfg.type, data: { n: i + j }, delay: cfg.delayMs! })));
    out(ids.map((id) => `pub ${id}`).join('\n'));
  }
  out('published');
} else if (cfg.role === 'count') {
  await bus.subscribe(
    // maxAttempts 10: every takeover counts an attempt for each delivery the killed owner held (handled
    // or not, if not yet committed), and a scenario kills owners 5 times in a row.
    { group: cfg.group!, types: [cfg.type], from: 'earliest', key: 'subject', concurrency: cfg.concurrency ?? 8, claimIdleMs: cfg.claimIdleMs ?? 1000, maxAttempts: 10 },
    (e, ctx) => {
      const c = ctx as unknown as { state: { seq: number[] } | null };
      c.state ??= { seq: [] };
      c.state.seq.push((e.data as { n: number }).n);
      out(`got ${e.id} ${ctx.attempt}`);
    },
  );
  out('ready');
} else {
  await bus.subscribe(
    { group: cfg.group!, types: [cfg.type], from: 'earliest', concurrency: cfg.concurrency ?? 8, claimIdleMs: cfg.claimIdleMs ?? 1000 },
    (e, ctx) => {
      out(`got ${e.id} ${ctx.attempt}`);
      if (cfg.role === 'hang') return new Promise(() => {});
    },
  );
  out('ready');
}
