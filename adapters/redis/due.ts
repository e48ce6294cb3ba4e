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
 *
 * Named entries (PublishOptions.name): a topic's names hash `{<stream>}:due-names` sits beside its
 * due set, so storing under a name replaces the pending entry of that name on the same topic in
 * one script (the old one is moved before, or never). A name is unique across topics too, and
 * topics live on different cluster slots: a named store first cancels the name on every other
 * listed topic (one small script each, in parallel), then stores; a cancel runs on every listed
 * topic. The topics set is read afresh for both (another host may have just added one), so a
 * named store or a cancel costs a round trip plus one script per topic that ever had a delayed event.
 * A cancel's dedup marker (`once`) is a key of its own (keys.cancelMarker) holding the result,
 * set after the cancels: a cancel repeated after a crash before it is harmless (the handler that
 * cancelled stored nothing after it yet: its operations run in order).
 */
import { randomUUID } from 'node:crypto';
import type { AppendEntry, DriverDue, DueEntry, DueRecord } from '../../bus/driver.js';
import type { RedisStore } from './client.js';
import { delivery } from './delivery.js';
import { ListedSet } from './listed-set.js';
import { cancelNamed, dueMember, memberFields, moveDue, removeDue, scheduleNamed } from './scripts/due.js';

/** The due topics set is read again when its size changed, or after this long. */
const LIST_EVERY_MS = 10_000;
/** Entry ids are `<type>/<token>`: types cannot contain a slash; a token is 36 characters of a UUID (`n` first when named). */
const ENTRY_ID = /^(.+)\/([0-9a-fn][0-9a-f-]{35})$/;

export class RedisDue implements DriverDue {
  /** The due topics set (keys.dueTopics) as movers read it. */
  private readonly listed: ListedSet;

  constructor(private readonly s: RedisStore) {
    this.listed = new ListedSet(s, s.keys.dueTopics, LIST_EVERY_MS);
  }

  /**
   * One SCARD when no topic ever had a delayed event; else one script call per such topic, in
   * parallel. A topic whose script fails (its stream key holds another type) holds back no other.
   */
  async move(now: number, max: number): Promise<{ moved: number; next: number | null; failed?: unknown[]; entries: DueEntry[] }> {
    const topics = await this.topics();
    const { cmd, keys } = this.s;
    const results = await Promise.allSettled(topics.map((t) => moveDue.call(cmd, keys.due(t), keys.stream(t), keys.dueNames(t), now, max)));
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

  /**
   * Stores a named entry (Streams.append hands them here): unless its dedup marker says it was
   * stored already, cancels its name on every other topic, then replaces it on its own in one
   * script. `register`: also name the topic as known and published (as Streams.send does once).
   * Three round trips, each sent at once: the marker check with naming the topic as a due topic and
   * reading them all; the cancels on the others (none when it is the only one); the script with the
   * registration.
   */
  async storeNamed(e: AppendEntry, fields: string[], register: boolean): Promise<void> {
    const { cmd, keys } = this.s;
    const marker = e.dedup && e.dedupWindowMs > 0 ? keys.dedup(e.topic, e.event.source, e.event.id) : null;
    // Naming the topic is harmless for a duplicate: the first store named it already.
    const [seen, , topics] = await Promise.all([marker === null ? 0 : cmd.exists(marker), cmd.sadd(keys.dueTopics, e.topic), cmd.smembers(keys.dueTopics)]);
    // A duplicate changes nothing, here either: a cancel on other topics would undo what the same handler did after.
    if (seen === 1) return;
    const others = topics.filter((t) => t !== e.topic);
    if (others.length > 0) await Promise.all(others.map((t) => cancelNamed.call(cmd, keys.due(t), keys.dueNames(t), e.dueName!)));
    const member = dueMember(`n${randomUUID().slice(1)}`, fields);
    await Promise.all([
      scheduleNamed.call(cmd, keys.due(e.topic), keys.dueNames(e.topic), marker, e.dedupWindowMs, e.dueAt!, member, e.dueName!),
      ...(register ? [cmd.sadd(keys.topics, e.topic), cmd.sadd(keys.published, e.topic)] : []),
    ]);
  }

  /** The marker read and the due topics read go together; then the cancels, then the marker set. */
  async cancel(name: string, once: { source: string; id: string; windowMs: number } | null): Promise<boolean> {
    const { cmd, keys } = this.s;
    const marker = once ? keys.cancelMarker(once.source, once.id) : null;
    const [seen, topics] = await Promise.all([marker === null ? null : cmd.get(marker), cmd.smembers(keys.dueTopics)]);
    if (seen !== null) return seen === '1';
    const found = (await Promise.all(topics.map((t) => cancelNamed.call(cmd, keys.due(t), keys.dueNames(t), name)))).some(Boolean);
    if (marker !== null) await cmd.set(marker, found ? '1' : '0', 'PX', String(once!.windowMs));
    return found;
  }

  /** The earliest `limit` of each topic (one ZRANGE each, in parallel), merged by due time. */
  async list(filter: { type: string | null; limit: number; maxBytes: number }): Promise<DueRecord[]> {
    const { cmd, keys } = this.s;
    const topics = filter.type === null ? await cmd.smembers(keys.dueTopics) : [filter.type];
    const per = await Promise.all(
      topics.map(async (t) => {
        const [raw, names] = await Promise.all([cmd.zrange(keys.due(t), '0', String(filter.limit - 1), 'WITHSCORES'), cmd.hgetall(keys.dueNames(t))]);
        const out: DueRecord[] = [];
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const m = raw[i];
          const token = m.slice(0, 36);
          // Decoded as a read decodes the stream entry it becomes (any layout).
          const d = delivery(t, keys.stream(t), '0-0', 0, memberFields(m), filter.maxBytes);
          out.push({ id: `${t}/${token}`, topic: t, dueAt: Number(raw[i + 1]), name: names[`t:${token}`] ?? null, event: d.event });
        }
        return out;
      }),
    );
    return per.flat().sort((a, b) => a.dueAt - b.dueAt || a.id.localeCompare(b.id)).slice(0, filter.limit);
  }

  /** Each id's member is found by ZSCAN on its token (a CLI's removal: rare), then removed by script. */
  async remove(ids: string[]): Promise<number> {
    const { cmd, keys } = this.s;
    let n = 0;
    for (const id of ids) {
      const m = ENTRY_ID.exec(id);
      if (!m) continue;
      const [, type, token] = m;
      const member = await this.findMember(keys.due(type), token);
      if (member !== null && (await removeDue.call(cmd, keys.due(type), keys.dueNames(type), member))) n++;
    }
    return n;
  }

  private async findMember(due: string, token: string): Promise<string | null> {
    let cursor = '0';
    do {
      const [next, found] = (await this.s.cmd.zscan(due, cursor, 'MATCH', `${token}*`, 'COUNT', 1000)) as [string, string[]];
      for (let i = 0; i < found.length; i += 2) if (found[i].startsWith(token)) return found[i];
      cursor = next;
    } while (cursor !== '0');
    return null;
  }

  async counts(): Promise<Map<string, number>> {
    const topics = await this.topics();
    const n = await Promise.all(topics.map((t) => this.s.cmd.zcard(this.s.keys.due(t))));
    return new Map(topics.map((t, i) => [t, n[i]]));
  }

  private topics(): Promise<readonly string[]> {
    return this.listed.read();
  }
}
