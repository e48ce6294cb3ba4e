import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isAgentClass } from '../agents/base.js';
import { invalid } from '../bus/errors.js';
import type { AgentEntry } from './agents.js';
import type { SupervisorOptions } from './supervisor.js';

const SOURCE = /\.(m|c)?(j|t)s$/;
const SKIP = /(\.d\.(m|c)?ts|\.test\.(m|c)?(j|t)s)$/;

export interface LoadedAgents {
  agents: AgentEntry[];
  /** From a module's `export const supervisor = {...}`, if any (the last one wins). */
  supervisor?: SupervisorOptions;
  files: string[];
}

/**
 * Loads agents from a file, a folder (its `.ts`/`.js`/`.mjs` files, not recursive, skipping
 * `*.test.*` and `*.d.ts`) or an installed module name. A module contributes every exported
 * class extending BaseAgent, and a default export that is such a class or an array of agent
 * entries. TypeScript files are loaded through tsx.
 */
export async function loadAgents(target: string, cwd = process.cwd()): Promise<LoadedAgents> {
  const path = resolve(cwd, target);
  let files: string[];
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(path);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) {
    files = readdirSync(path).filter((f) => SOURCE.test(f) && !SKIP.test(f)).sort().map((f) => join(path, f));
    if (files.length === 0) throw invalid('INVALID_OPTION', `--agents ${target}: the folder has no .ts, .js or .mjs file`);
  } else if (st?.isFile()) {
    files = [path];
  } else {
    files = [moduleUrl(target, cwd)];
  }
  if (files.some((f) => /\.(m|c)?ts$/.test(extname(f)))) await registerTypeScript();
  const out: LoadedAgents = { agents: [], files };
  const seen = new Set<unknown>();
  for (const f of files) {
    const mod = (await import(f.startsWith('file:') || !f.startsWith('/') ? f : pathToFileURL(f).href)) as Record<string, unknown>;
    const add = (v: unknown) => {
      const key = isAgentClass(v) ? v : (v as { agent?: unknown })?.agent;
      if (seen.has(key)) return;
      seen.add(key);
      out.agents.push(v as AgentEntry);
    };
    const d = mod.default;
    if (Array.isArray(d)) d.forEach(add);
    else if (isAgentClass(d)) add(d);
    for (const [name, v] of Object.entries(mod)) if (name !== 'default' && isAgentClass(v)) add(v);
    if (mod.supervisor !== undefined) out.supervisor = mod.supervisor as SupervisorOptions;
  }
  if (out.agents.length === 0) throw invalid('INVALID_OPTION', `--agents ${target}: no agent found (export classes extending BaseAgent from ${files.join(', ')})`);
  return out;
}

function moduleUrl(specifier: string, cwd: string): string {
  try {
    return pathToFileURL(createRequire(join(cwd, 'package.json')).resolve(specifier)).href;
  } catch {
    throw invalid('INVALID_OPTION', `--agents ${specifier}: no such file or folder, and no installed module of that name`);
  }
}

let tsRegistered = false;
async function registerTypeScript(): Promise<void> {
  if (tsRegistered || process.execArgv.some((a) => a.includes('tsx'))) return;
  const { register } = await import('tsx/esm/api');
  register();
  tsRegistered = true;
}
