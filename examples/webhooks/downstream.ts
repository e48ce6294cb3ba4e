// The downstream each webhook goes to (the seed's MCP server), simulated: WEBHOOK_DOWNSTREAM_MS of
// work per call; tools listed in WEBHOOK_FAILING_TOOLS are down and fail after WEBHOOK_FAIL_MS, as a
// timing-out service does. Replace `deliver` with a real call.
import type { Logger } from 'pino';

const env = process.env;
const failing = new Set((env.WEBHOOK_FAILING_TOOLS ?? '').split(',').filter(Boolean));

export async function deliver(tool: string, _webhook: unknown, log: Logger): Promise<void> {
  if (failing.has(tool)) {
    await new Promise((r) => setTimeout(r, Number(env.WEBHOOK_FAIL_MS ?? 2000)));
    log.warn({ tool }, 'downstream call failed');
    throw new Error(`${tool} downstream timed out`);
  }
  const ms = Number(env.WEBHOOK_DOWNSTREAM_MS ?? 5);
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  if (log.isLevelEnabled('debug')) log.debug({ tool }, 'downstream call succeeded');
}
