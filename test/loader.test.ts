import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadAgents } from '../runtime/loader.js';
import { resolveAgent } from '../runtime/agent-spec.js';
import { rejects } from './helpers/index.js';

test('a folder: its .mjs and .ts modules in file-name order, entries and classes, supervisor options; tests and .d.ts skipped', async () => {
  const loaded = await loadAgents('test/fixtures/agents-folder');
  assert.equal(loaded.files.map((f) => f.split('/').pop()), ['a-first.mjs', 'b-second.ts']);
  const agents = loaded.agents.map(resolveAgent);
  assert.equal(agents.map((a) => [a.name, a.restart]), [['JsAgent', 'transient'], ['TsAgent', 'permanent']]);
  assert.equal(loaded.supervisor, { strategy: 'rest_for_one' });
});

test('a single file, and errors that name what is wrong', async () => {
  const one = await loadAgents('test/fixtures/agents/replay.ts');
  assert.equal(one.agents.map((a) => resolveAgent(a).name), ['Recorder']);
  await rejects(() => loadAgents('no/such/dir'), 'INVALID_OPTION', '--agents no/such/dir: no such file or folder, and no installed module of that name');
  await rejects(() => loadAgents('test/fixtures'), 'INVALID_OPTION', '--agents test/fixtures: the folder has no .ts, .mts, .cts, .js, .mjs or .cjs file');
  await rejects(() => loadAgents('test/helpers/host.ts'), 'INVALID_OPTION', '--agents test/helpers/host.ts: no agent found');
});

test('an installed module by name', async () => {
  // uvu is installed and exports no agent: resolved as a module, then refused for having none.
  await rejects(() => loadAgents('uvu'), 'INVALID_OPTION', '--agents uvu: no agent found');
});

test.run();
