import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bus } from '../../bus/contract.js';
import type { HttpEndpoints } from '../http.js';
import { createUi } from './index.js';

export interface ServeUiOptions {
  bus: Bus;
  /** 0 picks a free port (the result's url says which). */
  port: number;
  /** Interface to listen on. Default 127.0.0.1: the UI shows event contents and is not for the open network. */
  hostname?: string | undefined;
  /** Allow retry, purge, rewind, replay to an agent and cancelling delayed events. Default false (read-only). */
  actions?: boolean | undefined;
}

/**
 * `agentbus ui`: the admin UI on its own HTTP server against a store, without a host (so no agent
 * lifecycle, only what the store knows). `/` leads to `/ui`.
 */
export async function serveUi(o: ServeUiOptions): Promise<HttpEndpoints> {
  const ui = createUi({ bus: o.bus, actions: o.actions });
  const server = createServer((req, res) => {
    if (ui.handle(req, res)) return;
    if ((req.url ?? '/').split('?')[0] === '/') {
      res.writeHead(302, { location: '/ui/' });
      return res.end();
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found: the admin UI is under /ui\n');
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.hostname ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    ui.close();
    throw err;
  }
  const a = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    server,
    url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      (closed ??= new Promise<void>((resolve, reject) => {
        ui.close();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      })),
  };
}
