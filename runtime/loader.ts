import { readdirSync, readFileSync, statSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isAgentClass } from '../agents/base.js';
import { invalid } from '../bus/errors.js';
import type { AgentEntry } from './agent-spec.js';
import type { SupervisorOptions } from './supervisor.js';

const SOURCE = /\.(m|c)?(j|t)s$/;
const SKIP = /(\.d\.(m|c)?ts|\.test\.(m|c)?(j|t)s)$/;
const TYPESCRIPT = /\.(m|c)?ts$/;

export interface LoadedAgents {
  agents: AgentEntry[];
  /** From a module's `export const supervisor = {...}`, if any (the last one wins). */
  supervisor?: SupervisorOptions;
  files: string[];
}

/**
 * Loads agents from a file, a folder (its `.ts`/`.mts`/`.cts`/`.js`/`.mjs`/`.cjs` files, not
 * recursive, skipping `*.test.*` and `*.d.ts`) or an installed module name. A module contributes
 * every exported class extending BaseAgent, and a default export that is such a class, an array of
 * agent entries, or an object holding such classes (a CommonJS `module.exports = { Orders }`).
 *
 * Each file loads in its own module system, as Node would run it: `.mjs`/`.mts`, and `.js`/`.ts`
 * under `"type": "module"`, as ES modules; `.cjs`/`.cts`, and `.js`/`.ts` in a package without it
 * (npm's default), as CommonJS. TypeScript goes through tsx, with its ESM and CommonJS hooks
 * registered together: a CommonJS `.ts` file that imports agentbus becomes a `require('agentbus')`,
 * which tsx's ESM hook alone hands to Node's ESM loader as a require() cycle. CommonJS agents need
 * require() of ES modules (agentbus is one): Node 20.19+ or 22.12+; on an older Node the error
 * says so and what to change.
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
    if (files.length === 0) throw invalid('INVALID_OPTION', `--agents ${target}: the folder has no .ts, .mts, .cts, .js, .mjs or .cjs file`);
  } else if (st?.isFile()) {
    files = [path];
  } else {
    files = [moduleUrl(target, cwd)];
  }
  const out: LoadedAgents = { agents: [], files };
  const seen = new Set<unknown>();
  for (const f of files) {
    const mod = await loadModule(f, target, cwd);
    const add = (v: unknown) => {
      const key = isAgentClass(v) ? v : (v as { agent?: unknown })?.agent;
      if (seen.has(key)) return;
      seen.add(key);
      out.agents.push(v as AgentEntry);
    };
    const d = mod.default;
    if (Array.isArray(d)) d.forEach(add);
    else if (isAgentClass(d)) add(d);
    // A CommonJS module's exports object: Node finds most of its names statically, not all.
    const cjs = isPlainObject(d) ? Object.entries(d).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
    for (const [name, v] of [...Object.entries(mod), ...cjs]) if (name !== 'default' && isAgentClass(v)) add(v);
    const supervisor = mod.supervisor ?? (isPlainObject(d) ? d.supervisor : undefined);
    if (supervisor !== undefined) out.supervisor = supervisor as SupervisorOptions;
  }
  if (out.agents.length === 0) throw invalid('INVALID_OPTION', `--agents ${target}: no agent found (export classes extending BaseAgent from ${files.join(', ')})`);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function moduleUrl(specifier: string, cwd: string): string {
  try {
    return pathToFileURL(createRequire(join(cwd, 'package.json')).resolve(specifier)).href;
  } catch {
    throw invalid('INVALID_OPTION', `--agents ${specifier}: no such file or folder, and no installed module of that name`);
  }
}

async function loadModule(f: string, target: string, cwd: string): Promise<Record<string, unknown>> {
  const url = f.startsWith('file:') || !f.startsWith('/') ? f : pathToFileURL(f).href;
  try {
    if (TYPESCRIPT.test(extname(f))) {
      await registerTypeScript();
      // Through require(), not import(): Node 20's import() of a CommonJS file that require()s an
      // ES module fails (ERR_VM_MODULE_LINK_FAILURE) when tsx hands the file's source to the ESM loader.
      if (isCommonJs(f)) return namespaceOf(createRequire(import.meta.url)(f));
    }
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw explain(err, f, target, cwd);
  }
}

/** Whether Node runs `file` as CommonJS: `.cjs`/`.cts`, or `.js`/`.ts` unless the nearest package.json says `"type": "module"`. */
function isCommonJs(file: string): boolean {
  if (/\.c(j|t)s$/.test(file)) return true;
  if (/\.m(j|t)s$/.test(file) || file.startsWith('file:') || !file.startsWith('/')) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown }).type !== 'module';
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT' || dirname(dir) === dir) return true;
    }
  }
}

/** A CommonJS module's exports as import() shows them: its names, and `default` (the whole exports, or an ES module's default export compiled to CommonJS). */
function namespaceOf(exports: unknown): Record<string, unknown> {
  if (exports === null || typeof exports !== 'object') return { default: exports };
  const e = exports as Record<string, unknown>;
  return { ...e, default: e.__esModule === true ? e.default : e };
}

let tsRegistered: Promise<void> | undefined;

/**
 * tsx's ESM and CommonJS hooks, registered once for the process (skipped when it already runs under
 * tsx, as the repository's own scripts do). tsx's CommonJS hook would also compile every ES-module
 * `.js` file a require() reaches into a CommonJS copy: agentbus required from a CommonJS agent would
 * be a second copy beside the host's (its error classes not the host's, ioredis loaded twice, which
 * throws). Files under node_modules therefore keep Node's own loader, which requires ES modules
 * natively (require(esm)) and hands back the very module the host runs.
 */
function registerTypeScript(): Promise<void> {
  if (process.execArgv.some((a) => a.includes('tsx'))) return Promise.resolve();
  tsRegistered ??= (async () => {
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    const extensions = (Module as unknown as { _extensions: Record<string, (m: unknown, file: string) => void> })._extensions;
    const nodeJs = extensions['.js']!;
    cjs.register();
    const tsxJs = extensions['.js']!;
    extensions['.js'] = function (this: unknown, m: unknown, file: string) {
      return (file.includes(`${sep}node_modules${sep}`) ? nodeJs : tsxJs).call(this, m, file);
    };
    esm.register();
  })();
  return tsRegistered;
}

/** Errors of loading an agent file, with what to change when it is the module system's doing. */
function explain(err: unknown, file: string, target: string, cwd: string): unknown {
  const code = (err as { code?: unknown })?.code;
  if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_CYCLE_MODULE') return err;
  const name = file.startsWith('/') ? relative(cwd, file) || file : file;
  const why = process.features.require_module
    ? 'CommonJS and ES modules require() each other in a cycle'
    : `require() of an ES module needs Node 20.19+ or 22.12+ (this is Node ${process.version}${process.features.require_module === false ? ' with require(esm) turned off' : ''})`;
  return invalid(
    'INVALID_OPTION',
    `--agents ${target}: ${name} is loaded as CommonJS (a .cjs/.cts file, or .js/.ts where package.json has no "type": "module") and requires agentbus, an ES module; ${why}. ` +
      `Make the file an ES module: set "type": "module" in package.json, or name it .mts/.mjs${process.features.require_module ? '' : '; or upgrade Node'} (${(err as Error).message.split('\n')[0]})`,
  );
}
