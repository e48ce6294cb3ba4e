// The package as another project sees it: `import { createBus } from 'agentbus'` from a package that
// depends on it, the exports map hiding internals, and the bin. Needs `npm run build` (npm test runs it).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = process.cwd();
const app = mkdtempSync(join(tmpdir(), 'agentbus-consumer-'));
mkdirSync(join(app, 'node_modules'));
symlinkSync(root, join(app, 'node_modules', 'agentbus'), 'dir');
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', type: 'module', dependencies: { agentbus: '*' } }));

const node = (file: string, code: string) => {
  writeFileSync(join(app, file), code);
  return spawnSync(process.execPath, [file], { cwd: app, encoding: 'utf8', env: { ...process.env, AGENTBUS_SQLITE_PATH: join(app, 'bus.db') } });
};

test('dist is built', () => {
  assert.ok(existsSync(join(root, 'dist/index.js')), 'dist/index.js missing: run npm run build');
});

test("import { createBus } from 'agentbus' works from another package, and round-trips an event", () => {
  const r = node(
    'app.mjs',
    `import { createBus, ValidationError } from 'agentbus';
     import { createSqliteBus } from 'agentbus/sqlite';
     const bus = await createBus();
     const got = new Promise((resolve) => bus.subscribe({ group: 'g', types: ['hello'] }, (e) => resolve(e.data)));
     await bus.publish('hello', { from: 'app' });
     console.log(JSON.stringify(await got), typeof createSqliteBus, typeof ValidationError);
     await bus.close();`,
  );
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), '{"from":"app"} function function');
});

test("an agent written against 'agentbus' runs in an AgentHost from another package; agentbus/redis resolves", () => {
  const r = node(
    'agent.mjs',
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
     const host = new AgentHost({ bus, agents: [Greeter], catchUncaught: false });
     await host.start();
     await bus.publish('greet.requested', { name: 'ada' });
     console.log(JSON.stringify(await seen), host.status().ready, typeof createRedisBus, typeof CircuitBreaker);
     await host.stop();
     await bus.close();`,
  );
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.split('\n').filter((l) => !l.startsWith('{"level"')).join('').trim(), '["ada","Greeter","Greeter"] true function function');
});

test('internals are not reachable through the package root', () => {
  const r = node('deep.mjs', `import 'agentbus/dist/bus/engine.js';`);
  assert.is.not(r.status, 0);
  assert.ok(r.stderr.includes('ERR_PACKAGE_PATH_NOT_EXPORTED'), r.stderr);
});

test('the agentbus bin runs', () => {
  const out = execFileSync(process.execPath, [join(app, 'node_modules/agentbus/dist/runtime/cli.js'), '--version'], { encoding: 'utf8' });
  assert.ok(/^\d+\.\d+\.\d+$/.test(out.trim()), out);
});

test.run();
