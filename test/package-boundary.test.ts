// The package root loads no store: `import { BaseAgent } from 'agentbus'` must not load
// better-sqlite3 (a native module) or ioredis; createBus loads the adapter it is asked for, when it
// is asked. Checked in a fresh process importing the built package by its name (dist/index.js,
// through the package's self-reference), by what Node's CommonJS loader holds (both stores are
// CommonJS packages, so importing them from ESM puts them in require.cache) and by the native
// addons opened (process.dlopen). Needs `npm run build`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = process.cwd();
assert.ok(existsSync(join(root, 'dist/index.js')), 'dist/index.js missing: run npm run build');

/** Runs `body` (an ES module, with `loaded()` in scope) in a fresh Node process and returns what it printed, as JSON. */
function inChild(body: string): Record<string, unknown> {
  const script = `
import { createRequire } from 'node:module';
const addons = [];
const dlopen = process.dlopen;
process.dlopen = function (module, file, ...rest) { addons.push(String(file)); return dlopen.call(this, module, file, ...rest); };
const require = createRequire(import.meta.url);
/** Which stores' modules are loaded now. */
const loaded = () => {
  const files = Object.keys(require.cache);
  return {
    sqlite: files.some((f) => f.includes('/node_modules/better-sqlite3/')) || addons.some((f) => f.includes('better_sqlite3')),
    redis: files.some((f) => f.includes('/node_modules/ioredis/')),
    slots: files.some((f) => f.includes('/node_modules/cluster-key-slot/')),
  };
};
${body}`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent' } });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

test("import { BaseAgent } from 'agentbus' loads neither better-sqlite3 nor ioredis; createBus loads only the adapter chosen", () => {
  const r = inChild(`
const agentbus = await import('agentbus');
const atImport = loaded();
const exported = typeof agentbus.BaseAgent === 'function' && typeof agentbus.createSqliteBus === 'function' && typeof agentbus.createRedisBus === 'function';
const bus = await agentbus.createBus({ adapter: 'sqlite', path: ':memory:' });
await bus.publish('boundary.checked', { ok: true });
const afterSqlite = loaded();
await bus.close();
const viaRoot = await agentbus.createSqliteBus({ path: ':memory:' });
await viaRoot.close();
await import('agentbus/redis');
console.log(JSON.stringify({ atImport, exported, afterSqlite, afterRedisImport: loaded() }));
`);
  assert.ok(r.exported, 'the root still exports BaseAgent, createSqliteBus and createRedisBus');
  assert.equal(r.atImport, { sqlite: false, redis: false, slots: false }, 'importing the root loaded a store');
  // The same probe sees each store once it is loaded: the check above can fail.
  assert.equal(r.afterSqlite, { sqlite: true, redis: false, slots: false }, 'createBus({ adapter: sqlite }) loads SQLite only');
  assert.equal(r.afterRedisImport, { sqlite: true, redis: true, slots: true }, "'agentbus/redis' loads ioredis");
});

test.run();
