// `npm start` runs these agents in the host (`agentbus start --agents examples/demo/agents.ts`) on
// the embedded SQLite store, so a new user sees events flow in the log within seconds.
// Traffic publishes signups and payments; Welcome handles signups, Billing handles payments (and
// fails now and then, to show retries and a dead letter), Audit sees everything by pattern and
// logs a summary every 5 s. The store is ./data/demo.db (the start script sets AGENTBUS_SQLITE_PATH),
// apart from ./data/agentbus.db, which the CLI and other examples use by default.
// Ctrl-C (SIGINT) or SIGTERM drains in-flight handlers and exits 0.
import { BaseAgent, NonRetryableError, type AgentContext, type CloudEvent, type HandlerContext } from '../../index.js';

/** A producer: no subscriptions, only a timer started in onStart (cleared by the runtime at stop). */
export class Traffic extends BaseAgent {
  private n = 0;
  onStart(ctx: AgentContext): void {
    ctx.setInterval(async () => {
      const n = ++this.n;
      // One batch, one round trip: both events are stored, or neither (and a shutdown cannot land between them).
      await ctx.publishBatch([
        { type: 'user.signed_up', data: { name: `user-${n}` }, subject: `user-${n}` },
        { type: 'payment.received', data: { amount: n % 7 === 0 ? -5 : n * 10 }, subject: `user-${n % 3}` },
      ]);
    }, 500);
  }
}

export class Welcome extends BaseAgent {
  static subscriptions = ['user.signed_up'];
  onUserSignedUp(e: CloudEvent<{ name: string }>, ctx: HandlerContext): void {
    ctx.logger.info({ user: e.data.name, attempt: ctx.attempt }, 'sent a welcome mail');
  }
}

export class Billing extends BaseAgent {
  static subscriptions = ['payment.received'];
  static options = { concurrency: 4, orderBy: 'subject' as const, maxAttempts: 3, backoff: { initialMs: 200 } };
  async onPaymentReceived(e: CloudEvent<{ amount: number }>, ctx: HandlerContext): Promise<void> {
    const { amount } = e.data;
    if (amount < 0) throw new NonRetryableError(`negative amount ${amount}`);
    if (Math.random() < 0.3 && ctx.attempt === 1) throw new Error('payment provider timed out');
    ctx.logger.info({ subject: e.subject, amount, attempt: ctx.attempt }, 'booked payment');
    await ctx.publish('payment.booked', { amount }, { subject: e.subject });
  }
}

/** Sees every event through patterns; one summary line every 5 s (a line per event would drown the log). */
export class Audit extends BaseAgent {
  static subscriptions = ['user.*', 'payment.*'];
  private counts: Record<string, number> = {};
  onStart(ctx: AgentContext): void {
    ctx.setInterval(() => {
      const total = Object.values(this.counts).reduce((a, b) => a + b, 0);
      if (total > 0) ctx.logger.info({ byType: this.counts }, `audit: recorded ${total} events in the last 5 s`);
      this.counts = {};
    }, 5000);
  }
  handle(e: CloudEvent): void {
    this.counts[e.type] = (this.counts[e.type] ?? 0) + 1;
  }
}
