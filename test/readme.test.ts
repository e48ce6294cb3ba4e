// The README's TypeScript, as a new user would paste it: every ```ts block of README.md goes into a
// fresh `"type": "module"` project whose tsconfig is what `tsc --init` writes (strict,
// exactOptionalPropertyTypes, noUncheckedIndexedAccess, module nodenext, verbatimModuleSyntax...),
// and is type-checked against the built package with this repository's TypeScript. A block whose
// first line is a comment naming a file (`// agents/device-cache.ts`) is written there, so others
// can import it; any other block is a file of its own. A fragment that cannot stand alone is
// marked `// fragment` on its first line and skipped (none is, today). Then the "from code"
// snippet (`// main.ts`) runs: it must start, serve HTTP, and exit 0 by itself on SIGTERM.
// Needs `npm run build` (npm test runs it).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from './helpers/index.js';

const root = process.cwd();
const app = mkdtempSync(join(tmpdir(), 'agentbus-readme-'));

interface Block {
  file: string;
  code: string;
  line: number;
}

/** The README's ```ts blocks, each with the file it goes to. */
function blocks(): Block[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const out: Block[] = [];
  for (const m of readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    const code = m[1]!;
    const first = code.split('\n')[0]!.trim();
    if (first === '// fragment') continue;
    const line = readme.slice(0, m.index).split('\n').length;
    const named = /^\/\/ ([\w./-]+\.(?:m|c)?ts)$/.exec(first)?.[1];
    out.push({ file: named ?? `readme-line-${line}.ts`, code, line });
  }
  return out;
}

test("the README's Errors table has a row for every error class bus/errors.ts exports, with its code, and names every code", () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('\n## Errors\n'), readme.indexOf('\n## CLI\n'));
  const source = readFileSync(join(root, 'bus/errors.ts'), 'utf8');
  const classes = [...source.matchAll(/^export class (\w+) extends AgentbusError \{(\}|[\s\S]*?^\})/gm)];
  assert.ok(classes.length >= 14, `only ${classes.length} error classes found in bus/errors.ts`);
  for (const [, name, body] of classes) {
    const row = table.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    assert.ok(row, `no row for ${name} in the README's Errors table`);
    const code = /super\('([A-Z_]+)'/.exec(body!)?.[1];
    if (code) assert.ok(row!.split('|')[2]!.includes(`\`${code}\``), `${name}'s row does not name its code ${code}: ${row}`);
  }
  const codes = [...source.slice(source.indexOf('export type ErrorCode'), source.indexOf(';', source.indexOf('export type ErrorCode'))).matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]!);
  assert.ok(codes.length >= 15, `only ${codes.length} codes found`);
  for (const code of codes) assert.ok(table.includes(`\`${code}\``), `the README's Errors table does not name ${code}`);
});

test('dist is built', () => {
  assert.ok(existsSync(join(root, 'dist/index.d.ts')), 'dist/index.d.ts missing: run npm run build');
});

test("the README's TypeScript blocks type-check under tsc --init's defaults", () => {
  const found = blocks();
  assert.ok(found.length >= 5, `only ${found.length} ts blocks found in README.md`);
  mkdirSync(join(app, 'node_modules/@types'), { recursive: true });
  symlinkSync(root, join(app, 'node_modules/agentbus'), 'dir');
  symlinkSync(join(root, 'node_modules/@types/node'), join(app, 'node_modules/@types/node'), 'dir');
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'readme', type: 'module', dependencies: { agentbus: '*' } }));
  const tsc = join(root, 'node_modules/.bin/tsc');
  execFileSync(tsc, ['--init'], { cwd: app, stdio: 'ignore' });
  const config = readFileSync(join(app, 'tsconfig.json'), 'utf8');
  for (const option of ['"strict": true', '"exactOptionalPropertyTypes": true', '"noUncheckedIndexedAccess": true', '"module": "nodenext"']) {
    assert.ok(config.includes(option), `tsc --init no longer writes ${option}: add it to the command below`);
  }
  for (const b of found) {
    mkdirSync(dirname(join(app, b.file)), { recursive: true });
    writeFileSync(join(app, b.file), b.code);
  }
  // As tsc --init's own comment says for Node: types ["node"] (with @types/node installed).
  const r = spawnSync(tsc, ['-p', '.', '--noEmit', '--types', 'node', '--pretty', 'false'], { cwd: app, encoding: 'utf8' });
  const where = found.map((b) => `${b.file} is the block at README.md line ${b.line}`).join('\n');
  assert.is(r.status, 0, `${r.stdout}${r.stderr}\n${where}`);
});

test("the README's from-code snippet serves, then exits 0 by itself on SIGTERM", async () => {
  const main = blocks().find((b) => b.file === 'main.ts');
  assert.ok(main, 'no ```ts block starting with // main.ts in README.md');
  // Port 0 instead of the snippet's 9464, which another process on this machine may hold.
  assert.ok(main.code.includes('serveHttp(host, 9464)'), main.code);
  writeFileSync(join(app, 'main.ts'), main.code.replace('serveHttp(host, 9464)', 'serveHttp(host, 0)') + '\nconsole.log(JSON.stringify({ msg: `serving ${http.url}` }));\n');
  const child = spawn(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), 'main.ts'], {
    cwd: app,
    env: { ...process.env, AGENTBUS_SQLITE_PATH: join(app, 'data/bus.db'), AGENTBUS_ADAPTER: '' },
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (code, signal) => resolve([code, signal])));
  await waitFor(`the snippet serving with DeviceCache running (log: ${log})`, () => (log.includes('serving http://') && log.includes('DeviceCache: starting -> running')) || child.exitCode !== null, 30_000);
  let result: [number | null, string | null] | undefined;
  void exited.then((r) => (result = r));
  try {
    const url = /serving (http:\/\/[^\s"]+)/.exec(log)?.[1];
    assert.ok(url, log);
    assert.is((await fetch(`${url}/readyz`)).status, 200);
    child.kill('SIGTERM');
    await waitFor(`the snippet exiting after SIGTERM (log: ${log})`, () => result !== undefined, 20_000, 50);
  } finally {
    if (result === undefined) child.kill('SIGKILL');
  }
  assert.equal(result, [0, null], log);
  assert.match(log, 'host stopped');
});

test.after(() => rmSync(app, { recursive: true, force: true }));

test.run();
