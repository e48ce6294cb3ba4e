import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as assert from 'uvu/assert';
import { assertSameIds, uniq, waitFor } from '../helpers/index.js';
import type { Target } from './index.js';

interface Child {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

export function startChild(config: object): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/child.ts', JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, lines, exited };
}

const ids = (c: Child, prefix: string) => c.lines.filter((l) => l.startsWith(prefix)).map((l) => l.split(' ')[1]);

export function processSuite(a: Target): void {
  const test = a.scenarios('several processes on one store');
  const busOptions = a.store.processOptions!;
  // Child processes a scenario started are killed when it ends, passed or failed: one left running
  // would keep this file's process alive until its time limit.
  const started: Child[] = [];
  const child = (config: object) => {
    const c = startChild(config);
    started.push(c);
    return c;
  };
  test.after.each(() => {
    for (const c of started.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  });

  test('a publisher process and two consumer processes: each event handled once by the group', async () => {
    const type = uniq('proc');
    const group = uniq('g');
    const consumers = [0, 1].map(() => child({ bus: busOptions, role: 'consume', type, group, concurrency: 16 }));
    await waitFor('consumers ready', () => consumers.every((c) => c.lines.includes('ready')), 20_000);
    const publisher = child({ bus: busOptions, role: 'publish', type, count: 3000 });
    assert.is(await publisher.exited, 0);
    const published = ids(publisher, 'pub ');
    assert.is(published.length, 3000);
    const got = () => consumers.flatMap((c) => ids(c, 'got '));
    await waitFor('3000 handled', () => got().length >= 3000, 30_000);
    for (const c of consumers) c.proc.kill('SIGTERM');
    await Promise.all(consumers.map((c) => c.exited));
    assertSameIds(got(), published);
    assert.ok(consumers.every((c) => ids(c, 'got ').length > 0), 'both consumers took a share');
  });

  test('a consumer process killed with SIGKILL mid-delivery: its events reach another consumer', async () => {
    const bus = await a.make();
    const type = uniq('kill');
    const group = uniq('g');
    const doomed = child({ bus: busOptions, role: 'hang', type, group, concurrency: 5, claimIdleMs: 300 });
    await waitFor('child ready', () => doomed.lines.includes('ready'), 20_000);
    const published = await bus.publishBatch(Array.from({ length: 5 }, (_, i) => ({ type, data: i })));
    await waitFor('child took 5', () => ids(doomed, 'got ').length === 5, 10_000);
    doomed.proc.kill('SIGKILL');
    await doomed.exited;
    const got: Array<[string, number]> = [];
    const sub = await bus.subscribe({ group, types: [type], concurrency: 5, claimIdleMs: 300 }, (e, ctx) => void got.push([e.id, ctx.attempt]));
    await waitFor('5 reclaimed', () => got.length >= 5, 5000);
    assertSameIds(got.map(([id]) => id), published);
    assert.ok(got.every(([, n]) => n === 2));
    await sub.close();
    await bus.close();
  });

  test.run();
}
