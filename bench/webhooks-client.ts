// Load generator for bench/webhooks.ts, in its own process so the client's cost is not the host's:
// node:http with a keep-alive agent (fetch tops out near 1,800 requests/s here). Argument: JSON
// { port, n, clients, rate? }. With `rate` it paces posts at that many per second; it always waits
// for each webhook's WebSocket push and prints one JSON line: ingest/s, end-to-end/s, latencies.
import { Agent, request } from 'node:http';
import { WebSocket } from 'ws';
import { percentile } from './util.js';

const { port, n, clients, rate, noWs } = JSON.parse(process.argv[2]) as { port: number; n: number; clients: number; rate?: number; noWs?: boolean };
const agent = new Agent({ keepAlive: true, maxSockets: clients });
const sentAt = new Map<string, number>();
const latencies: number[] = [];
let received = 0;
let done!: () => void;
const allPushed = new Promise<void>((r) => (done = r));
// noWs: a bare HTTP server to measure the client and node:http alone; nothing is pushed back.
const ws = noWs ? null : new WebSocket(`ws://127.0.0.1:${port}/ws`);
if (noWs) done();
ws?.on('message', (m) => {
  const { id } = JSON.parse(String(m)) as { id: string };
  const t = sentAt.get(id);
  if (t !== undefined) latencies.push(performance.now() - t);
  if (++received === n) done();
});
if (ws) await new Promise((r) => ws.once('open', r));

function post(i: number): Promise<void> {
  const body = JSON.stringify({ i, run: process.pid, pad: 'x'.repeat(200) });
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, path: `/webhooks/tool${i % 10}`, method: 'POST', headers: { 'content-type': 'application/json', 'x-event-type': 'bench', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        if (res.statusCode !== 202) return reject(new Error(`POST answered ${res.statusCode}: ${text}`));
        if (ws) sentAt.set((JSON.parse(text) as { id: string }).id, t);
        resolve();
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const t0 = performance.now();
if (rate) {
  const pending: Promise<void>[] = [];
  let sent = 0;
  while (sent < n) {
    const due = Math.min(n, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (sent < due) pending.push(post(sent++));
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
} else {
  let next = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < n) await post(next++);
  }));
}
const ingest = n / ((performance.now() - t0) / 1000);
await allPushed;
const e2e = n / ((performance.now() - t0) / 1000);
console.log(JSON.stringify({ ingest: Math.round(ingest), e2e: Math.round(e2e), p50: percentile(latencies, 50) ?? 0, p99: percentile(latencies, 99) ?? 0 }));
ws?.close();
agent.destroy();
