/**
 * Delayed publishes on Redis (Driver.due): each topic's due entries are a sorted set
 * `{<stream>}:due` scored by due time (scripts/due.ts has the entry's shape), and the topics that
 * ever had one are the set `<prefix>{agentbus}:due-topics`. A move runs the move script on each
 * listed topic's due set; the script moves and removes an entry in one step, on the stream's slot.
 *
 * The topics set never shrinks: removing a topic once its due set is empty would race with a
 * publisher adding an entry to it (on a cluster the two keys live on different nodes, so no script
 * can check both), and a due set nobody looks at would never fire. An empty due set costs one
 * script call per move.
 */
import type { DriverDue, DueEntry } from '../../bus/driver.js';
import type { RedisStore } from './client.js';
import { moveDue } from './scripts/due.js';

/** The due topics set is read again when its size changed, or after this long. */
const LIST_EVERY_MS = 10_000;

export class RedisDue implements DriverDue {
  private listed: { count: number; until: number; names: string[] } = { count: -1, until: 0, names: [] };

  constructor(private readonly s: RedisStore) {}

  /**
   * One SCARD when no topic ever had a delayed event; else one script call per such topic, in
   * parallel. A topic whose script fails (its stream key holds another type) holds back no other.
   */
  async move(now: number, max: number): Promise<{ moved: number; next: number | null; failed?: unknown[]; entries: DueEntry[] }> {
    const topics = await this.topics();
    const { cmd, keys } = this.s;
    const results = await Promise.allSettled(topics.map((t) => moveDue.call(cmd, keys.due(t), keys.stream(t), now, max)));
    let moved = 0;
    let next: number | null = null;
    const failed: unknown[] = [];
    const entries: DueEntry[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') return void failed.push(r.reason);
      moved = Math.max(moved, r.value.moved); // a full batch on any topic asks for another move at once
      if (r.value.next !== null && (next === null || r.value.next < next)) next = r.value.next;
      for (const dueAt of r.value.dueAts) entries.push({ topic: topics[i]!, dueAt });
    });
    if (failed.length === results.length && failed.length > 0) throw failed[0];
    return failed.length ? { moved, next, failed, entries } : { moved, next, entries };
  }

  async counts(): Promise<Map<string, number>> {
    const topics = await this.topics();
    const n = await Promise.all(topics.map((t) => this.s.cmd.zcard(this.s.keys.due(t))));
    return new Map(topics.map((t, i) => [t, n[i]]));
  }

  private async topics(): Promise<string[]> {
    const { cmd, keys } = this.s;
    const count = await cmd.scard(keys.dueTopics);
    if (count === 0) return [];
    if (count !== this.listed.count || Date.now() >= this.listed.until) {
      this.listed = { count, until: Date.now() + LIST_EVERY_MS, names: await cmd.smembers(keys.dueTopics) };
    }
    return this.listed.names;
  }
}
