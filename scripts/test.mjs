#!/usr/bin/env node
// Runs every test/**/*.test.ts in its own process (two at a time, a time limit each), prints each
// file's output whole, then one closing line summing uvu's totals: "N passed, N failed, N skipped".
// A file that crashes, times out or reports no totals counts as one failure.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cpus } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);
const timeoutMs = Number(process.env.TEST_TIMEOUT_MS || 240_000); // the slowest files (the conformance suite per store) take about a minute on a quiet machine
const LINGER_MS = 15_000;
const parallel = Number(process.env.TEST_JOBS || Math.max(2, cpus().length));

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return find(p);
    return p.endsWith('.test.ts') ? [p] : [];
  });
}

// The slowest files start first (about a minute and a half each on CI), so the two workers end
// together instead of one running the last long file alone; the others follow by name.
const SLOW_FIRST = ['test/redis-cluster.test.ts', 'test/redis.test.ts', 'test/sqlite.test.ts', 'test/sqlite-memory.test.ts', 'test/cli.test.ts', 'test/ui.test.ts', 'test/redis-sentinel.test.ts'];
const rank = (f) => (SLOW_FIRST.includes(f) ? SLOW_FIRST.indexOf(f) : SLOW_FIRST.length);
const files = find(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .sort((a, b) => rank(a) - rank(b));

const totals = { passed: 0, failed: 0, skipped: 0 };
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: root, env: { ...process.env, FORCE_COLOR: '0' } });
    let out = '';
    let lingering = null;
    const onData = (d) => {
      out += d;
      // uvu prints its totals once every suite ended: a file still running 15 s later holds an open
      // handle (a bus, a server) its failing test never closed. Kill it now rather than at the
      // file's time limit: the failure is already counted, the minutes are not worth waiting.
      if (!lingering && /Duration:\s+[\d.]+ms/.test(strip(out))) {
        lingering = setTimeout(() => {
          out += `\n  LINGERING: ${file} was still running ${LINGER_MS} ms after its tests ended (an open handle) and was killed\n`;
          child.kill('SIGKILL');
        }, LINGER_MS);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      out += `\n  TIMEOUT: ${file} ran longer than ${timeoutMs} ms and was killed\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(lingering);
      const text = strip(out);
      const num = (label) => Number(text.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
      const total = num('Total'), passed = num('Passed'), skipped = num('Skipped');
      let failed = total - passed;
      if (Number.isNaN(total) || code !== 0) failed = Math.max(1, Number.isNaN(failed) ? 1 : failed);
      totals.passed += Number.isNaN(passed) ? 0 : passed;
      totals.failed += failed;
      totals.skipped += Number.isNaN(skipped) ? 0 : skipped;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`\n=== ${file} (${secs}s, exit ${code ?? signal})\n${out}`);
      resolve();
    });
  });
}

const queue = [...files];
await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, async () => {
  while (queue.length) await runFile(queue.shift());
}));

if (files.length === 0) totals.failed++;
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exitCode = totals.failed > 0 ? 1 : 0;
