// The package as another project gets it: the tarball `npm pack` makes, installed into a fresh
// project of each kind (`"type": "module"`, `"type": "commonjs"` as npm 11's `npm init -y` writes,
// and no type field), with agents in TypeScript and JavaScript in each module system, run through
// the bin: start, publish, handled, SIGTERM, exit 0. Also `require('agentbus')`, a tsx-run script,
// the exports map hiding internals, and the packed README's links. Needs `npm run build` (npm test
// runs it): the tarball is packed from dist as built, without running the build again.
//
// Installing: `npm pack` runs once; each project gets the tarball extracted into
// node_modules/agentbus and the package's dependencies symlinked from this repository's
// node_modules. `npm install <tarball>` would need the network, or (with --offline) every
// dependency in npm's cache, and would rebuild better-sqlite3 from source when no prebuilt binary
// can be fetched: minutes, and not reliable in CI. The extracted copy is still a second copy of
// agentbus beside the repository, so the agents' `BaseAgent` and the host's are separate modules,
// as in a real install.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from './helpers/index.js';

const root = process.cwd();
const work = mkdtempSync(join(tmpdir(), 'agentbus-package-'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; version: string };

assert.ok(existsSync(join(root, 'dist/index.js')), 'dist/index.js missing: run npm run build');
const packed = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
) as Array<{ filename: string; files: Array<{ path: string }> }>;
const tarball = join(work, packed[0]!.filename);
const packedFiles = new Set(packed[0]!.files.map((f) => f.path));

type Kind = 'module' | 'commonjs' | 'none';

/** A fresh project with the packed agentbus installed (see the comment at the top). */
function project(kind: Kind): string {
  const app = join(work, kind);
  const nm = join(app, 'node_modules');
  mkdirSync(join(nm, 'agentbus'), { recursive: true });
  mkdirSync(join(nm, '.bin'));
  execFileSync('tar', ['-xzf', tarball, '-C', join(nm, 'agentbus'), '--strip-components=1']);
  for (const dep of Object.keys(pkg.dependencies)) {
    mkdirSync(dirname(join(nm, dep)), { recursive: true });
    symlinkSync(join(root, 'node_modules', dep), join(nm, dep), 'dir');
  }
  chmodSync(join(nm, 'agentbus/dist/runtime/cli.js'), 0o755); // as npm does for a bin
  symlinkSync('../agentbus/dist/runtime/cli.js', join(nm, '.bin/agentbus'));
  const manifest: Record<string, unknown> = { name: `app-${kind}`, version: '1.0.0', dependencies: { agentbus: pkg.version } };
  if (kind !== 'none') manifest.type = kind;
  writeFileSync(join(app, 'package.json'), JSON.stringify(manifest, null, 2));
  mkdirSync(join(app, 'agents'));
  mkdirSync(join(app, 'out'));
  return app;
}

// Every agent handles `order.placed` (each is its own group, so one publish reaches all) and writes
// out/<its name> with the order id.
const tsAgent = (name: string) => `import { writeFileSync } from 'node:fs';
import { BaseAgent, NonRetryableError, type CloudEvent, type HandlerContext } from 'agentbus';

export class ${name} extends BaseAgent {
  static subscriptions = ['order.placed', 'order.refused'];
  static options = { from: 'earliest' as const };

  async onOrderPlaced(event: CloudEvent<{ id: string }>, ctx: HandlerContext) {
    ctx.logger.info({ order: event.data.id }, 'handled');
    writeFileSync('out/${name}', event.data.id);
  }

  onOrderRefused() {
    throw new NonRetryableError('refused');   // the host's own class: a dead letter at once
  }
}
`;
const esmAgent = (name: string) => `import { writeFileSync } from 'node:fs';
import { BaseAgent } from 'agentbus';

export class ${name} extends BaseAgent {
  static subscriptions = ['order.placed'];
  static options = { from: 'earliest' };
  async onOrderPlaced(event, ctx) {
    writeFileSync('out/${name}', event.data.id);
  }
}
`;
const cjsAgent = (name: string) => `const { writeFileSync } = require('node:fs');
const { BaseAgent } = require('agentbus');

class ${name} extends BaseAgent {
  static subscriptions = ['order.placed'];
  static options = { from: 'earliest' };
  async onOrderPlaced(event, ctx) {
    writeFileSync('out/${name}', event.data.id);
  }
}
module.exports = { ${name} };
`;

/** Agent files per kind: TypeScript and JavaScript in the kind's own module system and in the other one. */
const agentFiles: Record<Kind, Record<string, string>> = {
  module: { 'ts-agent.ts': tsAgent('TsAgent'), 'cts-agent.cts': tsAgent('CtsAgent'), 'js-agent.js': esmAgent('JsAgent'), 'cjs-agent.cjs': cjsAgent('CjsAgent') },
  commonjs: { 'ts-agent.ts': tsAgent('TsAgent'), 'mts-agent.mts': tsAgent('MtsAgent'), 'js-agent.js': cjsAgent('JsAgent'), 'mjs-agent.mjs': esmAgent('MjsAgent') },
  none: { 'ts-agent.ts': tsAgent('TsAgent'), 'mts-agent.mts': tsAgent('MtsAgent'), 'js-agent.js': cjsAgent('JsAgent'), 'mjs-agent.mjs': esmAgent('MjsAgent') },
};

const env = (app: string) => ({ ...process.env, AGENTBUS_SQLITE_PATH: join(app, 'data/bus.db'), LOG_FORMAT: 'json', AGENTBUS_HTTP_PORT: '', AGENTBUS_AGENTS: '' });

function exited(child: ChildProcess): Promise<number | string> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
}

for (const kind of ['module', 'commonjs', 'none'] as const) {
  test(`a ${kind === 'none' ? 'package.json without "type"' : `"type": "${kind}" project`}: agentbus start runs TypeScript and JavaScript agents, handles a published event, exits 0 on SIGTERM`, async () => {
    const app = project(kind);
    for (const [file, code] of Object.entries(agentFiles[kind])) writeFileSync(join(app, 'agents', file), code);
    const bin = join(app, 'node_modules/.bin/agentbus');
    const host = spawn(bin, ['start', '--agents', './agents', '--port', '0'], { cwd: app, env: env(app) });
    let log = '';
    host.stdout.on('data', (d) => (log += d));
    host.stderr.on('data', (d) => (log += d));
    const code = exited(host);
    try {
      await waitFor(`the host running (log so far: ${log})`, () => log.includes('host running') || host.exitCode !== null, 30_000);
      assert.ok(log.includes('host running'), log);
      const pub = spawnSync(bin, ['publish', 'order.placed', '{"id":"o-1"}'], { cwd: app, env: env(app), encoding: 'utf8' });
      assert.is(pub.status, 0, pub.stderr);
      const names = Object.values(agentFiles[kind]).map((code) => /class (\w+)/.exec(code)![1]!);
      await waitFor(`every agent handled order o-1 (${names.join(', ')}; log: ${log})`, () => names.every((n) => existsSync(join(app, 'out', n))), 20_000);
      for (const n of names) assert.is(readFileSync(join(app, 'out', n), 'utf8'), 'o-1', n);
      // A NonRetryableError from a TypeScript agent's `agentbus` is the host's: one copy of agentbus.
      assert.is(spawnSync(bin, ['publish', 'order.refused', '{}'], { cwd: app, env: env(app) }).status, 0);
      const tsGroups = names.filter((n) => n.toLowerCase().endsWith('tsagent')).sort();
      let dead: Array<{ group: string; reason: string; attempts: number }> = [];
      await waitFor(`dead letters of ${tsGroups.join(', ')}`, () => {
        const ls = spawnSync(bin, ['dlq', 'ls', '--json'], { cwd: app, env: env(app), encoding: 'utf8' });
        dead = ls.status === 0 ? JSON.parse(ls.stdout) : [];
        return dead.length >= tsGroups.length;
      }, 20_000, 200);
      assert.equal(dead.map((d) => [d.group, d.reason, d.attempts]).sort(), tsGroups.map((g) => [g, 'non_retryable', 1]));
    } finally {
      host.kill('SIGTERM');
    }
    assert.is(await code, 0, log);
  });
}

test("require('agentbus') in a CommonJS project, and in a package.json without type: every entry point, one event round trip", () => {
  for (const kind of ['commonjs', 'none'] as const) {
    const app = join(work, kind);
    writeFileSync(
      join(app, 'roundtrip.js'),
      `const { createBus, BaseAgent } = require('agentbus');
       const { createSqliteBus } = require('agentbus/sqlite');
       const { createRedisBus } = require('agentbus/redis');
       (async () => {
         const bus = await createBus();
         const got = new Promise((resolve) => bus.subscribe({ group: 'g', types: ['hello'] }, (e) => resolve(e.data)));
         await bus.publish('hello', { from: '${kind}' });
         console.log(JSON.stringify(await got), typeof BaseAgent, typeof createSqliteBus, typeof createRedisBus);
         await bus.close();
       })();`,
    );
    const r = spawnSync(process.execPath, ['roundtrip.js'], { cwd: app, env: env(app), encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), `{"from":"${kind}"} function function function`);
    assert.not.match(r.stderr, /ExperimentalWarning|Warning/);
    const e = spawnSync(process.execPath, ['-e', "require('agentbus')"], { cwd: app, encoding: 'utf8' });
    assert.is(e.status, 0, e.stderr);
  }
});

test('a TypeScript script run with tsx in a CommonJS project imports agentbus', () => {
  const app = join(work, 'commonjs');
  writeFileSync(
    join(app, 'script.ts'),
    `import { createBus, type CloudEvent } from 'agentbus';
     async function main() {
       const bus = await createBus();
       const got = new Promise<unknown>((resolve) => bus.subscribe({ group: 'ts', types: ['hi'] }, (e: CloudEvent<{ n: number }>) => resolve(e.data.n)));
       await bus.publish('hi', { n: 7 });
       console.log(await got);
       await bus.close();
     }
     main();`,
  );
  const r = spawnSync(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), 'script.ts'], { cwd: app, env: env(app), encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), '7');
});

test('a CommonJS agent on a Node without require(esm) fails naming what to change', () => {
  const app = join(work, 'commonjs');
  const r = spawnSync(join(app, 'node_modules/.bin/agentbus'), ['start', '--agents', './agents/ts-agent.ts', '--port', '0'], {
    cwd: app,
    env: { ...env(app), NODE_OPTIONS: '--no-experimental-require-module' },
    encoding: 'utf8',
  });
  assert.is(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, 'agents/ts-agent.ts is loaded as CommonJS');
  assert.match(r.stderr, 'Node 20.19+ or 22.12+');
  assert.match(r.stderr, '"type": "module" in package.json');
});

test("import from 'agentbus' in an ES module project; internals are not reachable through the package root", () => {
  const app = join(work, 'module');
  writeFileSync(
    join(app, 'app.js'),
    `import { AgentHost, BaseAgent, CircuitBreaker, createBus } from 'agentbus';
     import { createRedisBus } from 'agentbus/redis';
     const bus = await createBus();
     let done;
     const seen = new Promise((r) => (done = r));
     class Greeter extends BaseAgent {
       static subscriptions = ['greet.requested'];
       static options = { from: 'earliest' };
       onGreetRequested(e, ctx) { done([e.data.name, ctx.agent, ctx.group]); }
     }
     const host = new AgentHost({ bus, agents: [Greeter], catchUncaught: false, logger: (await import('pino')).pino({ level: 'silent' }) });
     await host.start();
     await bus.publish('greet.requested', { name: 'ada' });
     console.log(JSON.stringify(await seen), host.status().ready, typeof createRedisBus, typeof CircuitBreaker);
     await host.stop();
     await bus.close();`,
  );
  const r = spawnSync(process.execPath, ['app.js'], { cwd: app, env: env(app), encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), '["ada","Greeter","Greeter"] true function function');
  for (const [file, code] of [['deep.mjs', `import 'agentbus/dist/bus/engine.js';`], ['deep.cjs', `require('agentbus/dist/bus/engine.js');`]]) {
    writeFileSync(join(app, file!), code!);
    const d = spawnSync(process.execPath, [file!], { cwd: app, encoding: 'utf8' });
    assert.is.not(d.status, 0);
    assert.ok(d.stderr.includes('ERR_PACKAGE_PATH_NOT_EXPORTED'), d.stderr);
  }
  const v = execFileSync(join(app, 'node_modules/.bin/agentbus'), ['--version'], { encoding: 'utf8' });
  assert.is(v.trim(), pkg.version);
});

test("the packed README's relative links point at files in the package", () => {
  const readme = readFileSync(join(work, 'module/node_modules/agentbus/README.md'), 'utf8');
  const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/i.test(l) && !l.startsWith('#'));
  assert.ok(links.length > 0, 'the README links to no file: this test would check nothing');
  const missing = links.filter((l) => {
    const path = posix.normalize(l.split('#')[0]!).replace(/\/$/, '');
    return !packedFiles.has(path) && ![...packedFiles].some((f) => f.startsWith(path + '/'));
  });
  assert.equal(missing, [], `links to files the package does not ship: ${missing.join(', ')} (ship them in package.json "files", or link elsewhere)`);
  const extracted = readdirSync(join(work, 'module/node_modules/agentbus'));
  assert.ok(extracted.includes('dist'), extracted.join(', '));
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
