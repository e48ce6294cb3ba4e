import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Row {
  scenario: string;
  agentbus: number;
  baseline: number;
  baselineName: string;
  goal: string;
}

export const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));

/** Milliseconds on CLOCK_MONOTONIC: comparable between processes on one machine (performance.now() is not). */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Calls `send` `total` times at `perSec`, in 1 ms ticks, catching up when a tick runs late. */
export async function offer(perSec: number, total: number, send: (i: number) => void): Promise<void> {
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * perSec));
    while (sent < due) send(sent++);
    await new Promise((r) => setTimeout(r, 1));
  }
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** A small event like the ones the seeds publish (~230 bytes stored). */
export const sample = (i: number) => ({ i, device: `dev-${i % 1000}`, status: 'validated', payload: 'x'.repeat(100) });

/** Runs `bench/<file>` in its own process (node flags `execArgv` first); resolves with the JSON lines it printed. */
export function worker(file: string, args: object, execArgv: string[] = []): { done: Promise<Record<string, number>[]>; lines: string[] } {
  const child = spawn(process.execPath, [...execArgv, '--import', 'tsx', `bench/${file}`, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  const done = new Promise<Record<string, number>[]>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))) : reject(new Error(`${file} exited ${code}`)))),
  );
  return { done, lines };
}

export function printTable(title: string, rows: Row[]): void {
  console.log(`\n## ${title}\n`);
  console.log('| scenario | agentbus ev/s | baseline ev/s | ratio | goal |');
  console.log('|---|---:|---:|---:|---|');
  for (const r of rows) {
    console.log(`| ${r.scenario} | ${r.agentbus.toLocaleString('en-US')} | ${r.baseline.toLocaleString('en-US')} (${r.baselineName}) | ${(r.agentbus / r.baseline).toFixed(2)}x | ${r.goal} |`);
  }
}
