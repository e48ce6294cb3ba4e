// Seed 002: keep the latest metadata per device and serve it.
//   npm run agentbus -- start --agents examples/device-cache/agents.ts
// DeviceCache consumes `device.validated` events ({ device_id, timestamp, metadata }) and keeps
// the newest metadata per device for DEVICE_CACHE_TTL seconds (default 3600). Its API, on
// DEVICE_CACHE_PORT (default 8082): GET /devices/:id and POST /devices/lookup {"ids": [...]}.
import { createServer, type Server } from 'node:http';
import { BaseAgent, type AgentContext, type CloudEvent, type HandlerContext, NonRetryableError } from '../../index.js';
import { openStore, type DeviceStore, type Metadata } from './store.js';

export interface DeviceValidated {
  device_id: string;
  /** When the device reading was validated (ISO-8601); decides which metadata is newest. */
  timestamp: string;
  metadata: Metadata;
}

export class DeviceCache extends BaseAgent {
  static subscriptions = ['device.validated'];
  static options = { concurrency: 16, orderBy: 'subject' as const };
  private store!: DeviceStore;
  private server!: Server;
  private readonly ttl = Number(process.env.DEVICE_CACHE_TTL ?? 3600);

  async onStart(ctx: AgentContext): Promise<void> {
    this.store = openStore();
    this.server = createServer((req, res) => void this.serve(req.method ?? '', req.url ?? '', req, res).catch((err) => {
      res.writeHead(500).end(String(err));
    }));
    const port = Number(process.env.DEVICE_CACHE_PORT ?? 8082);
    await new Promise<void>((resolve, reject) => this.server.once('error', reject).listen(port, '127.0.0.1', resolve));
    ctx.logger.info({ url: `http://127.0.0.1:${port}` }, 'device cache API listening');
  }

  async onDeviceValidated(e: CloudEvent<DeviceValidated>, ctx: HandlerContext): Promise<void> {
    const { device_id, timestamp, metadata } = e.data ?? ({} as DeviceValidated);
    const at = Date.parse(timestamp);
    if (typeof device_id !== 'string' || !device_id || Number.isNaN(at)) throw new NonRetryableError(`not a device.validated payload: ${JSON.stringify(e.data)}`);
    const stored = await this.store.put({ device_id, last_updated: at, ...metadata }, this.ttl);
    ctx.logger.debug({ device_id, stored }, stored ? 'metadata cached' : 'older than the cached metadata: kept the newer');
  }

  private async serve(method: string, url: string, req: NodeJS.ReadableStream, res: import('node:http').ServerResponse): Promise<void> {
    const json = (code: number, body: unknown): void => void res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const one = /^\/devices\/([^/?]+)$/.exec(url);
    if (method === 'GET' && one) {
      const r = await this.store.get(decodeURIComponent(one[1]));
      return r ? json(200, r) : json(404, { error: `no metadata for device ${decodeURIComponent(one[1])}` });
    }
    if (method === 'POST' && url === '/devices/lookup') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const ids = (JSON.parse(body || '{}') as { ids?: unknown }).ids;
      if (!Array.isArray(ids) || ids.length > 1000 || ids.some((i) => typeof i !== 'string')) return json(400, { error: 'expected {"ids": [up to 1000 device ids]}' });
      const found = await this.store.getMany(ids as string[]);
      return json(200, Object.fromEntries((ids as string[]).map((id, i) => [id, found[i]])));
    }
    json(404, { error: 'try GET /devices/:id or POST /devices/lookup' });
  }

  async onStop(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
    await this.store?.close();
  }
}
