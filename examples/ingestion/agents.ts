// Seed 000: asynchronous ingestion, synchronous retrieval.
//   INGEST_KEY=$(openssl rand -hex 32) npm run agentbus -- start --agents examples/ingestion/agents.ts
// Ingestor consumes `record.raw`, anonymises the PII (keyed hash), encrypts the record (AES-256-GCM)
// and stores it in the vault; the delivery is acknowledged only after the row is committed. Its HTTP
// endpoint GET /records/:id (INGEST_PORT, default 8081) decrypts one record: the synchronous path.
import { createServer, type Server } from 'node:http';
import { BaseAgent, NonRetryableError, type AgentContext, type CloudEvent, type HandlerContext } from '../../index.js';
import { loadKey, Vault, type RawRecord } from './vault.js';

// Checked when the host loads this file: without a key the host refuses to start at all.
const key = loadKey();

export class Ingestor extends BaseAgent {
  static subscriptions = ['record.raw'];
  // from earliest: records published while no consumer ever ran are ingested too.
  static options = {
    from: 'earliest' as const,
    concurrency: Number(process.env.INGEST_CONCURRENCY ?? 8),
    // How soon a crashed host's records go to another consumer.
    claimIdleMs: Number(process.env.INGEST_CLAIM_MS ?? 30_000),
  };
  private vault!: Vault;
  private server!: Server;
  private readonly workMs = Number(process.env.INGEST_WORK_MS ?? 0);

  async onStart(ctx: AgentContext): Promise<void> {
    this.vault = new Vault(process.env.INGEST_DB ?? './data/vault.db', key);
    this.server = createServer((req, res) => {
      const m = /^\/records\/([^/?]+)$/.exec(req.url ?? '');
      const record = req.method === 'GET' && m ? this.vault.retrieve(decodeURIComponent(m[1])) : null;
      res.writeHead(record ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(record ?? { error: 'not found' }));
    });
    const port = Number(process.env.INGEST_PORT ?? 8081);
    await new Promise<void>((resolve, reject) => this.server.once('error', reject).listen(port, '127.0.0.1', resolve));
    ctx.logger.info({ url: `http://127.0.0.1:${port}/records/:id`, stored: this.vault.count() }, 'vault open');
  }

  async onRecordRaw(e: CloudEvent<RawRecord>, ctx: HandlerContext): Promise<void> {
    const r = e.data;
    if (!r || typeof r.record_id !== 'string' || typeof r.name !== 'string' || typeof r.email !== 'string') {
      throw new NonRetryableError(`not a raw record: ${JSON.stringify(Object.keys(r ?? {}))}`); // never log the PII itself
    }
    if (this.workMs) await new Promise((res) => setTimeout(res, this.workMs)); // simulated processing time
    const stored = this.vault.store(r); // synchronous and committed when it returns: then we ack
    if (stored) ctx.logger.info({ record: r.record_id }, 'record stored');
    else ctx.logger.info({ record: r.record_id }, 'record already stored (redelivery): not stored again');
  }

  async onStop(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
    this.vault?.close();
  }
}
