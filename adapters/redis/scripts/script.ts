/**
 * How a Lua script of the Redis store is declared: its name, its key count, its Lua, and a typed
 * method for it. `call` runs it and resolves with its typed reply; `send` issues it on a pipeline or
 * a cluster batch (its reply comes with the batch's exec()) or on the client itself. Scripts are registered with ioredis'
 * defineCommand, which sends EVALSHA and falls back to EVAL after a NOSCRIPT.
 */
import type { Client, Commands, Sender } from '../client.js';

export interface Script<A extends unknown[], R> {
  /** The command name ioredis defines for it on the client and its pipelines. */
  readonly name: string;
  /** null: the key count is the first argument (a script over as many keys as a call has). */
  readonly numberOfKeys: number | null;
  readonly lua: string;
  call(on: Client, ...args: A): Promise<R>;
  /** Issues it on `on` and returns what that returned: the pipeline, or the client's promise of the raw reply. */
  send(on: Sender, ...args: A): unknown;
}

/**
 * A script whose typed arguments `argv` turns into what it is sent (KEYS first, then ARGV; arrays
 * are flattened by ioredis) and whose raw reply `reply` turns into what `call` resolves with.
 */
export function script<A extends unknown[], R>(def: {
  name: string;
  numberOfKeys: number | null;
  lua: string;
  argv: (...args: A) => unknown[];
  reply: (raw: unknown) => R;
}): Script<A, R> {
  const { name, numberOfKeys, lua, argv, reply } = def;
  return {
    name,
    numberOfKeys,
    lua,
    call: async (on, ...args) => reply(await (on as Commands)[name](...argv(...args))),
    send: (on, ...args) => on[name](...argv(...args)),
  };
}

/** Defines `scripts` on a client (and so on its pipelines). */
export function defineScripts(client: Client, scripts: ReadonlyArray<Script<never, unknown>>): void {
  for (const s of scripts) client.defineCommand(s.name, { ...(s.numberOfKeys === null ? {} : { numberOfKeys: s.numberOfKeys }), lua: s.lua });
}
