// Issue 12: a planner/tool pipeline written with keyed agents.
//   npm run agentbus -- start --agents examples/agents-pipeline
// `task.created` (subject = the task id, data { goal }) -> Planner plans PIPELINE_STEPS steps and
// publishes a `tool.run` per step -> Tool runs it and publishes `tool.result` -> Planner records
// each result in the task's state and, once every step is in, publishes `task.completed` once.
import { createHash } from 'node:crypto';
import { BaseAgent, type CloudEvent, type HandlerContext, type KeyedContext } from '../../index.js';

const env = process.env;
/** Steps per task. */
const STEPS = Number(env.PIPELINE_STEPS ?? 3);
/** How long one (fake) tool run takes, in ms. */
const TOOL_MS = Number(env.PIPELINE_TOOL_MS ?? 5);
/** How soon another host takes over the work of a host that died (the bus' default is 30 s). */
const CLAIM_MS = Number(env.PIPELINE_CLAIM_MS ?? 10_000);
/** Runs of one step before the task fails. */
const MAX_ATTEMPTS = 3;
const TOOLS = ['search', 'fetch', 'summarise', 'write'];

/** One task's state, stored per task id: committed with the acknowledgement of each event that changed it. */
export interface Task {
  goal: string;
  step: 'waiting_tools' | 'done' | 'failed';
  /** One tool call per step. */
  plan: Array<{ tool: string; input: string }>;
  /** Runs asked for, per step: a failed run is asked for again, up to MAX_ATTEMPTS. */
  attempts: number[];
  /** Each step's output, null until its result is in. */
  results: Array<string | null>;
}

export interface ToolRun {
  task: string;
  step: number;
  attempt: number;
  tool: string;
  input: string;
}

export type ToolResult = { task: string; step: number; attempt: number } & ({ ok: true; output: string } | { ok: false; error: string });

export class Planner extends BaseAgent {
  static subscriptions = ['task.created', 'tool.result'];
  /** One actor per task: a task's events run one at a time, in order, on one host at a time. */
  static key = 'subject';
  static initialState = (): Task | null => null;
  /** Tasks in parallel (each one still one event at a time). */
  static options = { concurrency: 64, claimIdleMs: CLAIM_MS };

  async onTaskCreated(e: CloudEvent<{ goal: string }>, ctx: KeyedContext<Task | null>): Promise<void> {
    if (ctx.state !== null) return; // the task exists: a second task.created for the id changes nothing
    const goal = String(e.data?.goal ?? '');
    const plan = Array.from({ length: STEPS }, (_, i) => ({ tool: TOOLS[i % TOOLS.length], input: `${goal} #${i + 1}` }));
    // Publishes of a keyed handler get ids derived from this delivery: if the host dies before the
    // state below is committed, the redelivery publishes the same events again and they are stored once.
    await ctx.publishBatch(plan.map((p, step) => ({ type: 'tool.run', subject: ctx.key, data: { task: ctx.key, step, attempt: 1, ...p } satisfies ToolRun })));
    ctx.state = { goal, step: 'waiting_tools', plan, attempts: plan.map(() => 1), results: plan.map(() => null) };
  }

  async onToolResult(e: CloudEvent<ToolResult>, ctx: KeyedContext<Task | null>): Promise<void> {
    const t = ctx.state;
    const r = e.data;
    // The Tool is a plain agent: a run redelivered after a crash replies twice. A result already
    // recorded, for an older attempt, or for a finished task changes nothing.
    if (t === null || t.step !== 'waiting_tools' || t.results[r.step] !== null || t.attempts[r.step] !== r.attempt) return;
    if (!r.ok) {
      if (r.attempt >= MAX_ATTEMPTS) {
        await ctx.publish('task.failed', { task: ctx.key, step: r.step, error: r.error }, { subject: ctx.key });
        t.step = 'failed';
        return;
      }
      const again: ToolRun = { task: ctx.key, step: r.step, attempt: r.attempt + 1, ...t.plan[r.step] };
      await ctx.publish('tool.run', again, { subject: ctx.key });
      t.attempts[r.step] = again.attempt;
      return;
    }
    t.results[r.step] = r.output;
    if (t.results.every((x) => x !== null)) {
      await ctx.publish('task.completed', { task: ctx.key, goal: t.goal, results: t.results }, { subject: ctx.key });
      t.step = 'done';
      ctx.logger.info({ task: ctx.key, attempts: t.attempts }, 'task completed');
    }
  }
}

/** A plain (unkeyed) agent: runs tools for every task, any host, in any order. */
export class Tool extends BaseAgent {
  static subscriptions = ['tool.run'];
  static options = { concurrency: 8, claimIdleMs: CLAIM_MS };

  async onToolRun(e: CloudEvent<ToolRun>, ctx: HandlerContext): Promise<void> {
    const { task, step, attempt, tool, input } = e.data;
    const r = await fakeTool(tool, input, attempt, ctx.signal);
    await ctx.publish('tool.result', { task, step, attempt, ...r } satisfies ToolResult, { subject: task });
  }
}

/**
 * A deterministic stand-in for a real tool: TOOL_MS of "work", then an output derived from the input.
 * About one step in five fails on its first attempt (a rate limit, say), so the planner asks again.
 */
async function fakeTool(tool: string, input: string, attempt: number, signal: AbortSignal): Promise<{ ok: true; output: string } | { ok: false; error: string }> {
  await new Promise((r) => setTimeout(r, TOOL_MS));
  signal.throwIfAborted();
  const digest = createHash('sha256').update(`${tool}\0${input}`).digest();
  if (attempt === 1 && digest[0] % 5 === 0) return { ok: false, error: `${tool}: rate limited` };
  return { ok: true, output: `${tool}(${input}) = ${digest.toString('hex').slice(0, 8)}` };
}
