// The admin web UI: a few server-rendered page shells, one stylesheet and one small vanilla script
// (no build step), and the JSON API they read (api.ts). Mounted under /ui by the host's HTTP server
// (serveHttp) and by `agentbus ui` (serve.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bus } from '../../bus/contract.js';
import { AgentbusError } from '../../bus/errors.js';
import { describe } from '../../bus/thrown.js';
import { ApiError, reads, writes, type ApiContext, type UiHost } from './api.js';
import { CLIENT_JS } from './client.js';
import { LAG_SAMPLE_MS, LagHistory } from './lag.js';
import { int } from '../../bus/validate.js';
import { CSS, page, PAGES } from './pages.js';

export interface UiOptions {
  bus: Bus;
  /** The host serving the UI: the overview shows its agents, the topic page replays to one (actions on). Without one, store-level data only. */
  host?: UiHost | undefined;
  /**
   * Allow retry, purge, rewind, replay to an agent and cancelling delayed events. Default false: the UI only reads. `agentbus ui --allow-actions`,
   * or AGENTBUS_UI_ACTIONS=1 for `agentbus start`.
   */
  actions?: boolean | undefined;
  /** How often the lag chart samples bus.stats(), ms, from 100 to 3,600,000. Default 5000. */
  lagSampleMs?: number | undefined;
}

export interface Ui {
  /** Answers a request under /ui and returns true; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Stops the lag sampler. */
  close(): void;
}

/** Largest POST body the API reads (a bulk retry of 1000 ids fits). */
const MAX_BODY = 256 * 1024;

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** Truthy values of AGENTBUS_UI_ACTIONS. */
export function actionsFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes'].includes((env.AGENTBUS_UI_ACTIONS ?? '').toLowerCase());
}

export function createUi(options: UiOptions): Ui {
  const ctx: ApiContext = {
    bus: options.bus,
    host: options.host,
    actions: options.actions === true,
    lag: new LagHistory(() => options.bus.stats(), int('ui lagSampleMs', options.lagSampleMs, LAG_SAMPLE_MS, 100, 3_600_000)),
  };
  const send = (res: ServerResponse, code: number, body: string, type: string) => {
    res.writeHead(code, { 'content-type': type, ...SECURITY_HEADERS });
    res.end(body);
  };
  const json = (res: ServerResponse, code: number, v: unknown) => send(res, code, JSON.stringify(v), 'application/json; charset=utf-8');
  const fail = (res: ServerResponse, err: unknown) => {
    if (err instanceof ApiError) return json(res, err.status, { error: err.message });
    if (err instanceof AgentbusError) return json(res, err.code.startsWith('INVALID') ? 400 : err.code === 'NOT_FOUND' ? 404 : 500, { error: err.message, code: err.code });
    json(res, 500, { error: describe(err) });
  };

  return {
    handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://ui');
      const path = url.pathname;
      if (path !== '/ui' && !path.startsWith('/ui/')) return false;
      ctx.lag.touch();
      const method = req.method ?? 'GET';
      if (path.startsWith('/ui/api/')) {
        const route = path.slice('/ui/api'.length);
        if (method === 'POST' && route in writes) {
          // A custom header forces a browser's cross-origin request through a preflight this server
          // never answers: another site open in the same browser cannot post here.
          if (req.headers['x-agentbus-ui'] !== '1') return json(res, 403, { error: 'missing header x-agentbus-ui: 1' }), true;
          if (!ctx.actions) return json(res, 403, { error: 'actions are off: this UI is read-only (start it with agentbus ui --allow-actions, or AGENTBUS_UI_ACTIONS=1 for agentbus start)' }), true;
          readBody(req).then((body) => writes[route]!(ctx, body)).then((v) => json(res, 200, v), (err) => fail(res, err));
          return true;
        }
        if ((method === 'GET' || method === 'HEAD') && route in reads) {
          Promise.resolve()
            .then(() => reads[route]!(ctx, url.searchParams))
            .then((v) => json(res, 200, v), (err) => fail(res, err));
          return true;
        }
        json(res, route in reads || route in writes ? 405 : 404, { error: `no ${method} ${path}` });
        return true;
      }
      if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'method not allowed\n', 'text/plain; charset=utf-8'), true;
      if (path === '/ui/app.js') return send(res, 200, CLIENT_JS, 'text/javascript; charset=utf-8'), true;
      if (path === '/ui/app.css') return send(res, 200, CSS, 'text/css; charset=utf-8'), true;
      const name = path === '/ui' || path === '/ui/' ? 'overview' : path.slice('/ui/'.length);
      if (!(name in PAGES)) return send(res, 404, page('overview', ctx.actions, `No page ${path}.`), 'text/html; charset=utf-8'), true;
      send(res, 200, page(name as keyof typeof PAGES, ctx.actions), 'text/html; charset=utf-8');
      return true;
    },
    close: () => ctx.lag.stop(),
  };
}

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, `request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
        resolve(v as Record<string, unknown>);
      } catch (err) {
        reject(new ApiError(400, `invalid JSON body: ${(err as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}
