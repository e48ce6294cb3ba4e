// Seed 004: REST API -> stream -> worker, with dedup, retries, a circuit breaker per tool, dead
// letters, WebSocket push of processed events, and lag on /metrics.
//   npm run agentbus -- start --agents examples/webhooks/agents.ts
// POST /webhooks/:tool (WEBHOOK_PORT, default 8084) with a JSON body; the event type comes from the
// `x-event-type` header or the body's `event_type`. WebSocket clients on /ws get each processed event.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { WebSocketServer } from 'ws';
import { BaseAgent, CircuitBreaker, type AgentContext, type CloudEvent, type HandlerContext } from '../../index.js';
import { deliver } from './downstream.js';

const env = process.env;
/** Default dedup window, and per-tool ones: WEBHOOK_DEDUP_WINDOWS='{"github": 600000}'. */
const DEDUP_MS = Number(env.WEBHOOK_DEDUP_MS ?? 24 * 3600_000);
const DEDUP_PER_TOOL = JSON.parse(env.WEBHOOK_DEDUP_WINDOWS ?? '{}') as Record<string, number>;
const MAX_BODY = 256 * 1024;

export interface WebhookReceived {
  tool: string;
  event_type: string;
  payload: unknown;
}

/** The REST API (publishes `webhook.received`) and the WebSocket fan-out (consumes `webhook.processed`). */
export class WebhookApi extends BaseAgent {
  static subscriptions = ['webhook.processed'];
  // Pushing to sockets is quick and order between webhooks does not matter: many at once.
  static options = { concurrency: 256 };
  private server!: Server;
  private wss!: WebSocketServer;

  async onStart(ctx: AgentContext): Promise<void> {
    this.server = createServer((req, res) => {
      const m = /^\/webhooks\/([A-Za-z0-9_-]{1,64})$/.exec(req.url ?? '');
      const reply = (code: number, body: unknown) => void res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.method !== 'POST' || !m) return reply(404, { error: 'POST /webhooks/:tool' });
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      req.on('end', () => {
        if (size > MAX_BODY) return reply(413, { error: `body of ${size} bytes is over the ${MAX_BODY}-byte limit` });
        const raw = Buffer.concat(chunks);
        let payload: Record<string, unknown>;
        try {
          payload = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
        } catch {
          return reply(400, { error: 'the body is not JSON' });
        }
        const tool = m[1];
        const eventType = String(req.headers['x-event-type'] ?? payload.event_type ?? 'unknown');
        // The seed's composite id: the same delivery posted again inside the window is stored once.
        const id = `${tool}:${eventType}:${createHash('sha256').update(raw).digest('hex')}`;
        const data: WebhookReceived = { tool, event_type: eventType, payload };
        ctx
          .publish('webhook.received', data, { id, subject: tool, dedupWindowMs: DEDUP_PER_TOOL[tool] ?? DEDUP_MS })
          .then(() => reply(202, { id }), (err: Error) => reply(err.name === 'ValidationError' ? 400 : 503, { error: err.message }));
      });
    });
    this.wss = new WebSocketServer({ server: this.server, path: '/ws' });
    const port = Number(env.WEBHOOK_PORT ?? 8084);
    await new Promise<void>((resolve, reject) => this.server.once('error', reject).listen(port, '127.0.0.1', resolve));
    ctx.logger.info({ url: `http://127.0.0.1:${port}` }, 'webhook API listening (POST /webhooks/:tool, WebSocket /ws)');
  }

  onWebhookProcessed(e: CloudEvent): void {
    const message = JSON.stringify(e.data);
    for (const client of this.wss.clients) if (client.readyState === client.OPEN) client.send(message);
  }

  async onStop(): Promise<void> {
    for (const c of this.wss?.clients ?? []) c.close(1001, 'shutting down');
    await new Promise((r) => this.wss?.close(r));
    await new Promise((r) => this.server?.close(r));
  }
}

/**
 * Delivers each webhook to its tool's downstream. One circuit per tool: a tool that keeps failing
 * fails fast (no slow calls) while the others go on; its events retry with backoff and jitter and
 * end as dead letters if the tool stays down. Events of one tool run in order (subject = tool).
 */
export class WebhookWorker extends BaseAgent {
  static subscriptions = ['webhook.received'];
  static options = {
    concurrency: 32,
    orderBy: 'subject' as const,
    maxAttempts: Number(env.WEBHOOK_MAX_ATTEMPTS ?? 5),
    backoff: { initialMs: Number(env.WEBHOOK_BACKOFF_MS ?? 500), maxMs: 30_000 },
    // The per-tool breakers handle a failing tool; the agent-wide breaker would stop every tool.
    breakerFailures: 0,
  };
  private readonly breaker = new CircuitBreaker({ failures: Number(env.WEBHOOK_BREAKER_FAILURES ?? 3), resetMs: Number(env.WEBHOOK_BREAKER_RESET_MS ?? 30_000) });

  async onWebhookReceived(e: CloudEvent<WebhookReceived>, ctx: HandlerContext): Promise<void> {
    const { tool, event_type } = e.data;
    const started = performance.now();
    await this.breaker.run(tool, () => deliver(tool, e.data, ctx.logger));
    await ctx.publish('webhook.processed', { id: e.id, tool, event_type, attempt: ctx.attempt, ms: Math.round(performance.now() - started) }, { subject: tool });
  }
}
