// Seed 001: a Python backend XADDs verification results with flat fields; this agent consumes them
// through a consumer group and publishes `attestation.created` for each verified one.
//   AGENTBUS_ADAPTER=redis AGENTBUS_REDIS_PREFIX= REDIS_HOST=127.0.0.1 REDIS_PORT=6379 \
//     npm run agentbus -- start --agents examples/verification/agents.ts
// The empty prefix makes the stream's own name, verification_stream, the topic.
import { BaseAgent, NonRetryableError, type CloudEvent, type HandlerContext } from '../../index.js';

/** The flat fields the Python producer writes; a foreign entry's fields are the event's data. */
export interface Verification {
  user_wallet: string;
  did_id: string;
  result: 'verified' | 'failed';
  evidence_hash: string;
  verified_at: string;
}

export class Attestor extends BaseAgent {
  static subscriptions = [process.env.REDIS_STREAM_NAME ?? 'verification_stream'];
  /** The seed's consumer group name. */
  static agentName = process.env.REDIS_CONSUMER_GROUP ?? 'attestation_processors';
  /** COUNT 10 as in the seed: at most 10 entries in hand. */
  static options = { concurrency: 10, from: 'earliest' as const };

  async handle(e: CloudEvent<Verification>, ctx: HandlerContext): Promise<void> {
    const v = e.data;
    if (!/^0x[0-9a-fA-F]{40}$/.test(v?.user_wallet ?? '') || !v.evidence_hash) {
      throw new NonRetryableError(`not a verification result: ${JSON.stringify(v)}`);
    }
    if (v.result !== 'verified') {
      ctx.logger.info({ wallet: v.user_wallet, result: v.result }, 'not verified: no attestation');
      return;
    }
    // The stream entry's id makes the attestation's id: a redelivery publishes nothing new.
    await ctx.publish(
      'attestation.created',
      { wallet: v.user_wallet, did_id: Number(v.did_id), evidence_hash: v.evidence_hash, verified_at: v.verified_at },
      { subject: v.user_wallet, id: `attestation-${ctx.position}` },
    );
    ctx.logger.info({ wallet: v.user_wallet, did: v.did_id }, 'attestation created');
  }
}
