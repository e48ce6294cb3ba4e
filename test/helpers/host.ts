import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { waitFor } from './index.js';

export interface HostProcess {
  proc: ChildProcess;
  out: string[];
  /** Where it serves /healthz, /readyz, /metrics, /status. */
  url: string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** Hosts still running when the test process exits are killed then (one listener for all). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Starts `agentbus start` (the built CLI) as a real process; resolves once it serves. */
export async function startHost(agents: string, env: Record<string, string>): Promise<HostProcess> {
  const proc = spawn(process.execPath, ['dist/runtime/cli.js', 'start', '--agents', agents], {
    env: { ...process.env, AGENTBUS_HTTP_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  let buf = '';
  const take = (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    out.push(...lines);
  };
  proc.stdout!.on('data', take);
  proc.stderr!.on('data', take);
  const exit = new Promise<number | string>((r) => proc.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  // Waiting for the exit holds the test process open again (see the unref below).
  const exited = { then: (ok, fail) => (proc.ref(), exit.then(ok, fail)) } as Promise<number | string>;
  // A failed assertion must not leave the test file waiting on a live host: nothing here keeps the
  // test process alive, and its exit takes the host with it.
  proc.unref();
  (proc.stdout as unknown as Socket).unref();
  (proc.stderr as unknown as Socket).unref();
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  await waitFor(`host running (output so far:\n${out.join('\n')})`, () => out.some((l) => l.includes('host running')) || proc.exitCode !== null, 20_000);
  if (proc.exitCode !== null) throw new Error(`host exited ${proc.exitCode}:\n${out.join('\n')}`);
  const url = (JSON.parse(out.find((l) => l.includes('host running'))!) as { url: string }).url;
  return { proc, out, url, exited };
}

/** The "start|done <id> <pid>" lines of a work log, counted per id. */
export function workLog(path: string): { starts: Map<string, number>; dones: Map<string, number> } {
  const starts = new Map<string, number>();
  const dones = new Map<string, number>();
  if (!existsSync(path)) return { starts, dones };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [what, id] = line.split(' ');
    const m = what === 'start' ? starts : what === 'done' ? dones : null;
    if (m) m.set(id, (m.get(id) ?? 0) + 1);
  }
  return { starts, dones };
}
