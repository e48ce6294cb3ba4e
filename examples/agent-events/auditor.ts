// A new agent that was not running when the history happened: it gets it by replay.
//   npm run agentbus -- replay --agent ChangeAuditor --agents examples/agent-events/auditor.ts
import { BaseAgent, type CloudEvent, type HandlerContext } from '../../index.js';

export class ChangeAuditor extends BaseAgent {
  static subscriptions = ['change.detected'];
  private bytes = 0;

  onChangeDetected(e: CloudEvent<{ path: string; bytes: number }>, ctx: HandlerContext): void {
    this.bytes += e.data.bytes;
    ctx.logger.info({ path: e.data.path, total: this.bytes }, 'audited');
  }
}
