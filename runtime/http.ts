import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentHost } from './host.js';
import { describe } from '../bus/thrown.js';
import { actionsFromEnv, createUi } from './ui/index.js';

/** What serveHttp serves besides the health and metrics endpoints. */
export interface HttpOptions {
  /**
   * The admin UI under /ui (runtime/ui/): on and read-only by default, like /status it is for
   * loopback. `{ actions: true }` (or AGENTBUS_UI_ACTIONS=1) also allows retry, purge, rewind, replay and cancelling delayed events;
   * `false` serves no UI. `lagSampleMs`: how often its lag chart samples bus.stats() (default 5000).
   */
  ui?: false | { actions?: boolean | undefined; lagSampleMs?: number | undefined } | undefined;
}

/**
 * The host's HTTP endpoints:
 * - `GET /healthz`: 200 while the process serves (liveness).
 * - `GET /readyz`: 200 when the store answers and every agent runs; 503 with the reason otherwise.
 * - `GET /metrics`: Prometheus text format.
 * - `GET /status`: host.status() as JSON.
 * - `/ui`: the admin UI and its JSON API (see HttpOptions.ui).
 * Binds to loopback unless told otherwise: metrics and status are not for the open network.
 * The listening server keeps the process alive: `close()` it after `host.stop()` (port 0 picks a
 * free port; `url` says which).
 */
export async function serveHttp(host: AgentHost, port: number, hostname = '127.0.0.1', options: HttpOptions = {}): Promise<HttpEndpoints> {
  const ui = options.ui === false ? null : createUi({ bus: host.bus, host, actions: options.ui?.actions ?? actionsFromEnv(), lagSampleMs: options.ui?.lagSampleMs });
  const server = createServer((req, res) => {
    if (ui?.handle(req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    if (path === '/healthz') return send(200, 'ok\n');
    if (path === '/status') return send(200, JSON.stringify(host.status(), null, 2), 'application/json');
    if (path === '/readyz') {
      host.ready().then(
        (r) => send(r.ready ? 200 : 503, r.ready ? 'ready\n' : `not ready: ${r.reason}\n`),
        (err) => send(503, `not ready: ${describe(err)}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      host.metrics.registry.metrics().then(
        (text) => send(200, text, host.metrics.registry.contentType),
        (err) => send(500, `metrics failed: ${describe(err)}\n`),
      );
      return;
    }
    send(404, `not found: try /healthz, /readyz, /metrics, /status${ui ? ' or /ui' : ''}\n`);
  });
  server.on('close', () => ui?.close());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => (ui?.close(), reject(err)));
    server.listen(port, hostname, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    server,
    url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      (closed ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      })),
  };
}

/** What `serveHttp` returns. */
export interface HttpEndpoints {
  server: Server;
  /** Where it listens, e.g. `http://127.0.0.1:9464`. */
  url: string;
  /** Stops listening and closes idle keep-alive connections; resolves once the server is closed. Idempotent. */
  close(): Promise<void>;
}
