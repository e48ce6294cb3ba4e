import { invalid } from '../bus/errors.js';
import { int } from '../bus/validate.js';
import { createBus } from './config.js';
import { startLogger } from './cli-logger.js';
import { AgentHost } from './host.js';
import { serveHttp } from './http.js';
import { loadAgents } from './loader.js';
import type { Strategy } from './supervisor.js';
import { errForLog } from '../bus/thrown.js';

export interface StartOptions {
  /** File, folder or module with the agents. */
  agents: string;
  /** HTTP port for /healthz, /readyz, /metrics; 0 picks a free one. */
  port: number;
  httpHost: string;
  strategy?: Strategy;
  /** Exit 1 when an agent fails (past its restart intensity) instead of serving unready. */
  exitOnFailure: boolean;
}

/**
 * Reads `agentbus start` settings from the environment, flags taking precedence. An empty
 * variable or flag counts as unset (`AGENTBUS_HTTP_HOST=` does not bind every interface, nor
 * `AGENTBUS_HTTP_PORT=` pick a random port).
 */
export function startOptions(flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv = process.env): StartOptions {
  const pick = (flag: string, name: string) => {
    const v = flags[flag] ?? env[name];
    return v === '' ? undefined : v;
  };
  const port = pick('port', 'AGENTBUS_HTTP_PORT') ?? '9464';
  const n = Number(port);
  const exit = pick('exit-on-failure', 'AGENTBUS_EXIT_ON_FAILURE');
  return {
    agents: String(pick('agents', 'AGENTBUS_AGENTS') ?? './agents'),
    port: int('port (--port, AGENTBUS_HTTP_PORT)', Number.isInteger(n) ? n : port, 9464, 0, 65535),
    httpHost: String(pick('http-host', 'AGENTBUS_HTTP_HOST') ?? '127.0.0.1'),
    strategy: pick('strategy', 'AGENTBUS_STRATEGY') as Strategy | undefined,
    exitOnFailure: exit === true || exit === '1' || exit === 'true',
  };
}

/**
 * `agentbus start`: loads the agents, builds the bus from the environment, starts the supervised
 * host and its HTTP endpoints, and on SIGTERM/SIGINT drains in-flight handlers, acknowledges them
 * and exits 0. A second signal exits at once (1); what was in flight stays pending for another host.
 */
export async function start(o: StartOptions): Promise<number> {
  const logger = startLogger();
  const loaded = await loadAgents(o.agents);
  const supervisor = { ...(loaded.supervisor ?? {}), ...(o.strategy ? { strategy: o.strategy } : {}) };
  const bus = await createBus({ logger });
  let host: AgentHost;
  try {
    host = new AgentHost({ bus, agents: loaded.agents, supervisor, logger });
  } catch (err) {
    await bus.close();
    throw err;
  }
  let http: Awaited<ReturnType<typeof serveHttp>>;
  try {
    http = await serveHttp(host, o.port, o.httpHost);
  } catch (err) {
    await bus.close();
    throw invalid('INVALID_OPTION', `cannot serve HTTP on ${o.httpHost}:${o.port} (${(err as Error).message}); set AGENTBUS_HTTP_PORT or --port (0 picks a free port)`);
  }
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  let stopping = false;
  const shutdown = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    logger.info({ why }, 'host shutting down: draining in-flight handlers');
    try {
      await host.stop();
      await bus.close();
    } catch (err) {
      logger.error({ err: errForLog(err) }, 'shutdown failed');
      code = 1;
    }
    await new Promise((r) => http.server.close(r));
    logger.info({ code }, 'host exited');
    logger.flush?.();
    resolveExit(code);
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stopping) {
        logger.warn(`second ${sig}: exiting now; deliveries in flight stay pending for another consumer`);
        process.exit(1);
      }
      void shutdown(sig, 0);
    });
  }
  if (o.exitOnFailure) host.on('failed', (agent) => void shutdown(`agent ${agent} failed`, 1));
  await host.start();
  logger.info({ url: http.url, hostId: host.hostId, agents: loaded.files }, `host running; health, readiness, metrics and the admin UI (${http.url}/ui/) on ${http.url}`);
  return exited;
}
