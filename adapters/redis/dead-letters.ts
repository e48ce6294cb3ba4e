/**
 * Dead letters on Redis (Driver.deadLetters): a stream per topic (`{stream}:dlq`) with a per-group
 * count beside it. Moving a delivery there, listing, reading, retrying (through the group's retry
 * stream) and purging them; every change is one script (scripts/dead-letters.ts), so the counts stay exact.
 */
import type { DeadLetter } from '../../bus/contract.js';
import { isoTime, type Delivery, type DriverDeadLetters } from '../../bus/driver.js';
import { decodeEvent } from '../../bus/event.js';
import { execReplies, isRedisError, ok, pairs, type RedisStore } from './client.js';
import { keyOf } from './delivery.js';
import { compareIds, parseDlId } from './keys.js';
import { addDeadLetter, purgeDeadLetter, retryDeadLetter } from './scripts/dead-letters.js';
import type { Entry } from './scripts/lease.js';

export class DeadLetters implements DriverDeadLetters {
  constructor(
    private readonly s: RedisStore,
    /** Every known topic: the streams whose dead letters a listing without a type reads. */
    private readonly topics: () => Promise<string[]>,
  ) {}

  /** Driver.deadLetters.add: the delivery's entry moves to its topic's dead letters, acknowledged at once. */
  async add(group: string, d: Delivery, reason: string, error: string, stack?: string): Promise<void> {
    // The entry as stored, never re-serialised: an entry nested too deep for JSON.stringify (or any
    // event that cannot be) must still become a dead letter. Only a foreign entry decoded to an event
    // is stored as that envelope, so a retry (read back as an envelope) decodes the same way.
    const body = d.foreign && d.event ? (serialise(d.event) ?? d.raw) : d.raw;
    const { keys } = this.s;
    await addDeadLetter.call(this.s.cmd, keyOf(d), keys.dlq(d.topic), keys.dlqCount(d.topic), {
      group,
      id: d.position,
      reason,
      error,
      attempts: d.attempts,
      failedAt: Date.now(),
      body,
      stack,
    });
  }

  async list(f: { group?: string; type?: string; limit: number }): Promise<DeadLetter[]> {
    return this.listIn(f.type ? [f.type] : await this.topics(), f);
  }

  async get(id: string): Promise<DeadLetter | null> {
    const ref = parseDlId(id);
    if (!ref) return null;
    const [e] = (await this.s.cmd.xrange(this.s.keys.dlq(ref.type), ref.entry, ref.entry)) as Entry[];
    return e ? deadLetter(ref.type, e[0], e[1] ?? []) : null;
  }

  async retry(ids: string[]): Promise<number> {
    const { cmd, keys } = this.s;
    let n = 0;
    for (const id of ids) {
      const dl = await this.get(id);
      if (!dl) continue;
      const retryKey = keys.retry(dl.type, dl.group);
      await cmd.xgroup('CREATE', retryKey, dl.group, '0', 'MKSTREAM').catch((err: Error) => {
        if (!isRedisError(err, 'BUSYGROUP')) throw err;
      });
      n += await retryDeadLetter.call(cmd, keys.dlq(dl.type), retryKey, keys.dlqCount(dl.type), parseDlId(id)!.entry, dl.group);
    }
    return n;
  }

  async purge(ids: string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const ref = parseDlId(id);
      if (ref) n += await purgeDeadLetter.call(this.s.cmd, this.s.keys.dlq(ref.type), this.s.keys.dlqCount(ref.type), ref.entry);
    }
    return n;
  }

  /**
   * Dead letters, oldest first (by when they were dead-lettered: their entry id), at most `limit`:
   * every topic's stream is read from its start `limit` entries at a time, further only while a group
   * filter leaves fewer than `limit` matches, so a call reads about `limit` entries per stream.
   */
  private async listIn(types: string[], f: { group?: string; limit: number }): Promise<DeadLetter[]> {
    const found: Array<{ type: string; id: string; fields: string[] }> = [];
    let open = types.map((type) => ({ type, after: '-', matched: 0 }));
    while (open.length > 0) {
      const b = this.s.batch();
      for (const o of open) b.xrange(this.s.keys.dlq(o.type), o.after === '-' ? '-' : `(${o.after}`, '+', 'COUNT', f.limit);
      const replies = await execReplies(b);
      const next: typeof open = [];
      open.forEach((o, i) => {
        const entries = ok(replies[i], [] as Entry[]);
        for (const [id, fields] of entries) {
          const group = pairs(fields ?? []).group;
          if (f.group !== undefined && group !== f.group) continue;
          found.push({ type: o.type, id, fields: fields ?? [] });
          o.matched++;
        }
        if (entries.length === f.limit && o.matched < f.limit) next.push({ ...o, after: entries[entries.length - 1][0] });
      });
      open = next;
    }
    found.sort((a, b) => compareIds(a.id, b.id) || a.type.localeCompare(b.type));
    return found.slice(0, f.limit).map((e) => deadLetter(e.type, e.id, e.fields));
  }
}

function deadLetter(type: string, entry: string, fields: string[]): DeadLetter {
  const f = pairs(fields) as Record<string, string | undefined>;
  const event = decodeEvent(f.body ?? '');
  return {
    id: `${type}/${entry}`,
    group: f.group ?? '',
    type,
    position: f.position!,
    event: typeof event === 'string' ? null : event,
    raw: typeof event === 'string' ? (f.body ?? '') : null,
    reason: f.reason ?? '',
    error: f.error ?? '',
    // Entries written before stacks were kept have no such field.
    ...(f.stack ? { stack: f.stack } : {}),
    attempts: Number(f.attempts),
    failedAt: isoTime(f.failed_at),
  };
}

function serialise(event: unknown): string | null {
  try {
    return JSON.stringify(event);
  } catch {
    return null; // nested deeper than the stack allows
  }
}
