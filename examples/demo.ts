// `npm start`: a small pipeline on the embedded SQLite store, so a new user sees events flow.
// A producer publishes signups and payments; `welcome` handles signups, `billing` handles payments
// (and fails now and then, to show retries and one dead letter), `audit` sees everything by pattern.
// Ctrl-C drains in-flight handlers and exits 0. DEMO_SECONDS=N stops by itself after N seconds.
import { pino } from 'pino';
import { createBus, NonRetryableError } from '../index.js';

const logger = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' } } } : {}),
});

const bus = await createBus({ logger }); // AGENTBUS_SQLITE_PATH, default ./data/agentbus.db
const log = (agent: string) => logger.child({ agent });

const subs = [
  await bus.subscribe({ group: 'welcome', types: ['user.signed_up'] }, (e, ctx) => {
    log('welcome').info({ id: e.id, type: e.type, attempt: ctx.attempt, user: (e.data as { name: string }).name }, 'sent a welcome mail');
  }),
  await bus.subscribe(
    { group: 'billing', types: ['payment.received'], concurrency: 4, orderBy: 'subject', maxAttempts: 3, backoff: { initialMs: 200 } },
    (e, ctx) => {
      const { amount } = e.data as { amount: number };
      if (amount < 0) throw new NonRetryableError(`negative amount ${amount}`);
      if (Math.random() < 0.3 && ctx.attempt === 1) throw new Error('payment provider timed out');
      log('billing').info({ id: e.id, subject: e.subject, amount, attempt: ctx.attempt }, 'booked payment');
    },
  ),
  await bus.subscribe({ group: 'audit', types: ['user.*', 'payment.*'] }, (e) => {
    log('audit').debug({ id: e.id, type: e.type }, 'recorded');
  }),
];

let n = 0;
const producer = setInterval(() => {
  n++;
  void bus.publish('user.signed_up', { name: `user-${n}` }, { subject: `user-${n}` });
  void bus.publish('payment.received', { amount: n % 7 === 0 ? -5 : n * 10 }, { subject: `user-${n % 3}` });
}, 500);

async function stop(): Promise<void> {
  clearInterval(producer);
  await Promise.all(subs.map((s) => s.close()));
  for (const t of await bus.stats()) {
    for (const g of t.groups) logger.info({ topic: t.type, length: t.length, group: g.group, pending: g.pending, lag: g.lag, deadLetters: g.deadLetters }, 'stats');
  }
  await bus.close();
  logger.info('stopped cleanly');
  logger.flush();
}

process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
if (process.env.DEMO_SECONDS) setTimeout(() => void stop(), Number(process.env.DEMO_SECONDS) * 1000);
logger.info('agentbus demo running on SQLite; Ctrl-C to stop (try `npx agentbus stats` in another terminal)');
