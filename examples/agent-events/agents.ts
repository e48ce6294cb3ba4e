// Seed 003: agents on `events:<type>` streams, supervised, with dead letters and replay.
//   npm run agentbus -- start --agents examples/agent-events/agents.ts
// ChangeDetectionAgent turns `file.changed` into `change.detected`; an event whose `size` is not a
// number poisons it (a bug: it throws) until the fixed build runs (AGENT_EVENTS_FIXED=1), so the
// event ends in the dead letters and is retried from the CLI after the fix. HealthCheck answers
// `health.check` with `health.reported`; `{"crash": true}` injects a crash to watch the supervisor.
import { BaseAgent, type AgentContext, type CloudEvent, type HandlerContext } from '../../index.js';

export interface FileChanged {
  path: string;
  size: number | string;
}

export class ChangeDetectionAgent extends BaseAgent {
  static subscriptions = ['file.changed'];
  static options = { maxAttempts: 3, backoff: { initialMs: 50 }, concurrency: 4 };

  async onFileChanged(e: CloudEvent<FileChanged>, ctx: HandlerContext): Promise<void> {
    const { path, size } = e.data;
    // The bug: a size sent as a string breaks the old build on every attempt.
    const bytes = process.env.AGENT_EVENTS_FIXED === '1' ? Number(size) : size;
    if (typeof bytes !== 'number' || Number.isNaN(bytes)) throw new TypeError(`size of ${path} is not a number: ${JSON.stringify(size)}`);
    await ctx.publish('change.detected', { path, bytes, seenAt: new Date().toISOString() }, { subject: path });
  }
}

export class HealthCheck extends BaseAgent {
  static subscriptions = ['health.check'];
  private started = '';

  onStart(ctx: AgentContext): void {
    this.started = new Date().toISOString();
    ctx.logger.info('health check ready');
  }

  async onHealthCheck(e: CloudEvent<{ crash?: boolean }>, ctx: HandlerContext): Promise<void> {
    if (e.data?.crash) {
      // A crash, not a failed delivery: the supervisor tears this instance down and starts a new one.
      ctx.crash(new Error('injected crash'));
      return;
    }
    await ctx.publish('health.reported', { status: 'ok', since: this.started });
  }
}
