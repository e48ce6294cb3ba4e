// Issue 12: a planner/tool pipeline written with keyed agents.
//   npm run agentbus -- start --agents examples/agents-pipeline
// `task.created` (subject = the task id, data { goal }) -> Planner plans PIPELINE_STEPS steps, sets
// the task's deadline reminder and asks the Tool for each step (a durable ctx.request: the Tool's
// return value is the reply) -> once every step is in it publishes `task.completed` once and cancels the deadline.
// A task whose tool does not answer is still open at its deadline: `task.deadline` marks it expired
// and publishes `task.expired` once.
import { createHash } from 'node:crypto';
import { BaseAgent, type CloudEvent, type HandlerContext, type KeyedContext } from '../../index.js';

const env = process.env;
/** Steps per task. */
const STEPS = Number(env.PIPELINE_STEPS ?? 3);
/** How long one (fake) tool run takes, in ms. */
const TOOL_MS = Number(env.PIPELINE_TOOL_MS ?? 5);
/** How long the Planner waits for one tool reply (ms); a step not answered in time stays open until the deadline. */
const TOOL_TIMEOUT_MS = Number(env.PIPELINE_TOOL_TIMEOUT_MS ?? 30_000);
/** A task not completed this long after its task.created expires (ms or a duration such as 10m). */
const DEADLINE = env.PIPELINE_DEADLINE_MS === undefined ? '10m' : /^\d+$/.test(env.PIPELINE_DEADLINE_MS) ? Number(env.PIPELINE_DEADLINE_MS) : env.PIPELINE_DEADLINE_MS;
/** Tools of a task whose goal contains this text never answer (to see a deadline fire); empty: none. */
const SILENT = env.PIPELINE_TOOL_SILENT ?? '';
/** How soon another host takes over the work of a host that died (the bus' default is 30 s). */
const CLAIM_MS = Number(env.PIPELINE_CLAIM_MS ?? 10_000);
/** Runs of one step before the task fails. */
const MAX_ATTEMPTS = 3;
const TOOLS = ['search', 'fetch', 'summarise', 'write'];

/** One task's state, stored per task id: committed with the acknowledgement of each event that changed it. */
export interface Task {
  goal: string;
  /** `waiting_tools`: some step has no result (its tool did not answer in time); the deadline ends it. */
  step: 'waiting_tools' | 'done' | 'failed' | 'expired';
  /** One tool call per step. */
  plan: Array<{ tool: string; input: string }>;
  /** Runs asked for, per step: a failed run is asked for again, up to MAX_ATTEMPTS. */
  attempts: number[];
  /** Each step's output, null until its result is in. */
  results: Array<string | null>;
}

/** The Tool's request (`tool.run`). */
export interface ToolRun {
  task: string;
  step: number;
  attempt: number;
  tool: string;
  input: string;
}

/** The Tool's reply: its handler's return value. */
export type ToolResult = { ok: true; output: string } | { ok: false; error: string };

export class Planner extends BaseAgent {
  static subscriptions = ['task.created', 'task.deadline'];
  /** One actor per task: a task's events run one at a time, in order, on one host at a time. */
  static key = 'subject';
  static initialState = (): Task | null => null;
  /** Tasks in parallel (each one still one event at a time). */
  static options = { concurrency: 64, claimIdleMs: CLAIM_MS };

  async onTaskCreated(e: CloudEvent<{ goal: string }>, ctx: KeyedContext<Task | null>): Promise<void> {
    if (ctx.state !== null) return; // the task exists: a second task.created for the id changes nothing
    const goal = String(e.data?.goal ?? '');
    const plan = Array.from({ length: STEPS }, (_, i) => ({ tool: TOOLS[i % TOOLS.length], input: `${goal} #${i + 1}` }));
    // The deadline, a named reminder of this task. Its id is derived from this delivery (as every
    // publish of a keyed handler): a run of this handler again after a crash stores it once, at the
    // time first set.
    await ctx.schedule('task.deadline', { task: ctx.key }, { in: DEADLINE, name: 'deadline' });
    const t: Task = { goal, step: 'waiting_tools', plan, attempts: plan.map(() => 0), results: plan.map(() => null) };
    // The steps run in parallel, each asked of the Tool with a durable request: a crash of this
    // host while they are out asks nothing again; the redelivered task.created runs this handler
    // again, on the next owner, and gets the replies recorded meanwhile, or waits on (README).
    const ended = await this.runSteps(ctx, t);
    ctx.state = t;
    const failed = ended.findIndex((x) => x !== null && x !== 'no answer');
    if (failed >= 0) {
      await ctx.publish('task.failed', { task: ctx.key, step: failed, error: ended[failed] }, { subject: ctx.key });
      t.step = 'failed';
      await ctx.cancelSchedule('deadline');
    } else if (t.results.every((x) => x !== null)) {
      await ctx.publish('task.completed', { task: ctx.key, goal: t.goal, results: t.results }, { subject: ctx.key });
      t.step = 'done';
      // Cancelled with the same derived-id rule: a completed task's deadline never fires.
      await ctx.cancelSchedule('deadline');
      ctx.logger.info({ task: ctx.key, attempts: t.attempts }, 'task completed');
    } else {
      ctx.logger.warn({ task: ctx.key, results: t.results }, 'a tool did not answer: the task waits for its deadline');
    }
  }

  /** The task's deadline: a task still open expires, once (its state says so; a repeat changes nothing). */
  async onTaskDeadline(_e: CloudEvent<{ task: string }>, ctx: KeyedContext<Task | null>): Promise<void> {
    const t = ctx.state;
    if (t === null || t.step !== 'waiting_tools') return; // done, failed or expired already
    await ctx.publish('task.expired', { task: ctx.key, reason: 'deadline', results: t.results }, { subject: ctx.key });
    t.step = 'expired';
    ctx.logger.info({ task: ctx.key }, 'task expired');
  }

  /**
   * Asks the Tool for every step, again for a step whose run failed (up to MAX_ATTEMPTS), in rounds:
   * each round asks for the steps still open together, in step order, and waits for all of them.
   * Durable requests are matched to their records by their order in the handler run, so the order
   * must be the same on every run: asking again as soon as one reply comes in would follow the
   * replies' timing, which a run after a crash does not repeat. Per step: null once its result is
   * recorded in `t`, the error of its last failed run, or 'no answer' when its request timed out.
   */
  private async runSteps(ctx: KeyedContext<Task | null>, t: Task): Promise<Array<string | null>> {
    const ended: Array<string | null | undefined> = t.plan.map(() => undefined);
    for (;;) {
      const open = t.plan.map((_, step) => step).filter((step) => ended[step] === undefined);
      if (open.length === 0) return ended as Array<string | null>;
      const asked = await Promise.all(open.map((step) => this.askTool(ctx, t, step)));
      for (const [i, step] of open.entries()) {
        const r = asked[i];
        if (r === 'no answer') ended[step] = r;
        else if (r.ok) {
          t.results[step] = r.output;
          ended[step] = null;
        } else if (t.attempts[step] >= MAX_ATTEMPTS) ended[step] = r.error;
      }
    }
  }

  /** One run of a step's tool: its reply, or 'no answer' when the request timed out or the Tool gave it up. */
  private async askTool(ctx: KeyedContext<Task | null>, t: Task, step: number): Promise<ToolResult | 'no answer'> {
    const attempt = ++t.attempts[step];
    try {
      return await ctx.request<ToolResult>('tool.run', { task: ctx.key, step, attempt, ...t.plan[step] } satisfies ToolRun, { subject: ctx.key, timeoutMs: TOOL_TIMEOUT_MS });
    } catch (err) {
      // By its code: the example may run against another copy of the package than the host's (dist/ vs sources).
      // No reply in time, or the Tool gave the request up (dead-lettered it: told at once, RequestFailedError).
      const code = (err as { code?: unknown } | null)?.code;
      if (code === 'REQUEST_TIMEOUT' || code === 'REQUEST_FAILED') return 'no answer';
      throw err;
    }
  }
}

/** A plain (unkeyed) agent: runs tools for every task, any host, in any order; its return value is the reply. */
export class Tool extends BaseAgent {
  static subscriptions = ['tool.run'];
  static options = { concurrency: 8, claimIdleMs: CLAIM_MS };

  async onToolRun(e: CloudEvent<ToolRun>, ctx: HandlerContext): Promise<ToolResult | undefined> {
    const { tool, input, attempt } = e.data;
    if (SILENT !== '' && input.includes(SILENT)) {
      ctx.deadLetter(`${tool}: no answer for ${JSON.stringify(input)} (PIPELINE_TOOL_SILENT)`); // the request fails (REQUEST_FAILED)
      return undefined;
    }
    return fakeTool(tool, input, attempt, ctx.signal);
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
