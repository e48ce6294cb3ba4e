// A bus user in its own process, driven by the parent test through argv and stdout lines:
//   publish: publishes `count` events of `type` in batches, printing "pub <id>", then "done"
//   consume: subscribes `group`, printing "got <id> <attempt>" after each handled event
//   hang:    like consume, but handlers never finish (a process to kill with events in flight)
//   count:   a keyed subscription (key: subject) appending each event's data.n to its key's state
//            ({ seq: [...] }), printing "got <id> <attempt>" (a keyed counter agent)
//   approve: a keyed subscription (key: subject) whose handler of `type` prints "began <key> <ms>
//            <attempt>", waits (ctx.waitFor, `waitMs`) for `<type>.granted` of its key, stores
//            { step: 'approved', by } or { step: 'timed out', deadline }, publishes `<type>.done`
//            under the id done-<key>, and prints "done <key>" (maxAttempts: `maxAttempts`, default 10).
//            With `stepFile`, the handler first runs ctx.step('llm'), whose function appends
//            "<key> <pid>" to that file (a call of a model) and returns { answer, pid }; it prints
//            "stepped <key> <result JSON>" and the state keeps the result as `llm`
//   ask:     a keyed subscription (key: subject) whose handler of `type` prints "asking <key>
//            <attempt>", makes a durable request (keyed ctx.request, timeout `waitMs`) of
//            `<type>.tool` with { key }, prints "replied <key> <reply JSON>", stores { reply },
//            publishes `<type>.done` under the id done-<key>, and prints "done <key>"
//   respond: answers each request of `type` with { n: data.n * 2, pid }
//   request: requests `type` once, printing "replied" once answered; stays open until killed
//   delay:   publishes `count` events of `type` with delay `delayMs`, printing "due <epoch ms>" (the
//            earliest due time), "pub <id>" per event, then "published"; stays open, its bus
//            moving due entries, until killed
// It prints "ready" once subscribed; SIGTERM closes the bus (draining) and exits 0.
import { appendFileSync } from 'node:fs';
import { pino } from 'pino';
import { createBus } from '../../runtime/config.js';
import { WaitTimeoutError } from '../../bus/errors.js';
import type { KeyedDeliveryContext } from '../../bus/keyed/contract.js';

const cfg = JSON.parse(process.argv[2]) as {
  bus: Record<string, unknown>;
  role: 'publish' | 'consume' | 'hang' | 'count' | 'respond' | 'request' | 'delay' | 'approve' | 'ask';
  type: string;
  group?: string;
  count?: number;
  concurrency?: number;
  claimIdleMs?: number;
  delayMs?: number;
  waitMs?: number;
  maxAttempts?: number;
  stepFile?: string;
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
} else if (cfg.role === 'request') {
  // Makes one request (its bus' reply topic is made then), prints "replied", and stays open until killed.
  await bus.request(cfg.type, { n: 1 }, { timeoutMs: 15_000 });
  out('replied');
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
} else if (cfg.role === 'approve') {
  const granted = `${cfg.type}.granted`;
  await bus.subscribe(
    { group: cfg.group!, types: [cfg.type], waitsFor: [granted], from: 'earliest', key: 'subject', concurrency: 8, claimIdleMs: cfg.claimIdleMs ?? 1000, maxAttempts: cfg.maxAttempts ?? 10 },
    async (e, c) => {
      if (e.type !== cfg.type) return; // a grant no wait took
      const ctx = c as KeyedDeliveryContext<unknown>;
      out(`began ${ctx.key} ${Date.now()} ${ctx.attempt}`);
      let llm: unknown;
      if (cfg.stepFile !== undefined) {
        llm = await ctx.step('llm', () => {
          appendFileSync(cfg.stepFile!, `${ctx.key} ${process.pid}\n`);
          return { answer: `for ${ctx.key}`, pid: process.pid };
        });
        out(`stepped ${ctx.key} ${JSON.stringify(llm)}`);
      }
      try {
        const m = await ctx.waitFor(granted, { timeout: cfg.waitMs! });
        ctx.state = { step: 'approved', by: m.data, ...(llm === undefined ? {} : { llm }) };
      } catch (err) {
        if (!(err instanceof WaitTimeoutError)) throw err;
        ctx.state = { step: 'timed out', deadline: err.deadline.getTime() };
      }
      await bus.publish(`${cfg.type}.done`, { key: ctx.key }, { id: `done-${ctx.key}`, source: '/approve' });
      out(`done ${ctx.key}`);
    },
  );
  out('ready');
} else if (cfg.role === 'ask') {
  await bus.subscribe(
    { group: cfg.group!, types: [cfg.type], from: 'earliest', key: 'subject', concurrency: 8, claimIdleMs: cfg.claimIdleMs ?? 1000, maxAttempts: cfg.maxAttempts ?? 10 },
    async (_e, c) => {
      const ctx = c as KeyedDeliveryContext<unknown>;
      out(`asking ${ctx.key} ${ctx.attempt}`);
      const reply = await ctx.request(`${cfg.type}.tool`, { key: ctx.key }, { timeoutMs: cfg.waitMs! });
      out(`replied ${ctx.key} ${JSON.stringify(reply)}`);
      ctx.state = { reply };
      await bus.publish(`${cfg.type}.done`, { key: ctx.key }, { id: `done-${ctx.key}`, source: '/ask' });
      out(`done ${ctx.key}`);
    },
  );
  out('ready');
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
