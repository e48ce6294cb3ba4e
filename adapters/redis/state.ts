/**
 * Keyed subscriptions' store on Redis (bus/state.ts): one owner per group, a record per key, and the
 * commit of a batch with its acknowledgement.
 *
 * Layout: every key of a group carries the hash tag `{agentbus:<group>}`, so all of them live on one
 * Redis Cluster slot and one Lua script reaches them together (group names cannot contain braces):
 * - `<prefix>{agentbus:<group>}:owner`: string `<epoch> <consumer>` with a PX lease (the server's
 *   clock decides expiry). Taken when absent, renewed only by its holder, deleted by disown().
 * - `<prefix>{agentbus:<group>}:epoch`: a counter without TTL, INCRed on each acquisition, so epochs
 *   grow across the owner record's expiry and are never reused.
 * - `<prefix>{agentbus:<group>}:state:<key>`: a hash per key, `v` version, `s` state (JSON), `a`
 *   last applied position per source stream (JSON object, stream key -> id), `t` updatedAt (server
 *   ms); PEXPIRE with the write's ttlMs, PERSIST with 0.
 * - `<prefix>{agentbus:<group>}:wait:<id>`: a keyed handler's durable wait (bus/keyed/waits.ts), a
 *   hash `type`, `key`, `deadline` (epoch ms, set once), `matched` (the matching event's JSON, set
 *   once); PEXPIREAT deadline + a margin, deleted after its delivery's commit, its dead letter's
 *   purge or fresh retry, or the erasure of its key.
 * - `<prefix>{agentbus:<group>}:waitkey:<key>`: the ids of a key's wait and step records, a sorted
 *   set scored by their expiry, kept by the scripts that create and delete them (scripts/waits.ts):
 *   listing one key's records (`state get`, `state waits --key`) and erasing a key (`state rm`)
 *   cost the key's records, not a SCAN of the node.
 * - `<prefix>{agentbus:<group>}:index-epochs`: a hash, without TTL, of which epochs this version
 *   (which indexes what it writes) owned: `owner` the last one, `since` the first of its current
 *   unbroken run, `scanned` the latest one a scan indexed the group under (ownGroup in
 *   scripts/state.ts). A key's records are read or erased by its index alone when the current
 *   epoch's owner is this version and `scanned` >= `since`. Otherwise (a group an earlier version
 *   wrote, a rolling upgrade or a rollback: an earlier version's owner writes records the index
 *   misses) the call first SCANs the group's `wait:` prefix and indexes what it finds
 *   (indexGroup), and records the scan when the current owner is this version: once per unbroken
 *   run of this version's owners, and on every call while an earlier version owns the group. Left
 *   out: a record an earlier version's handler writes after losing the group (until its lease
 *   check stops it) and after that scan.
 *
 * Commit is one script call for the whole batch (owner check, per-key version check and write). On
 * a single Redis the same script also XACKs the applied writes' deliveries (`atomicAck` true: their
 * streams are plain keys in other slots, which only a cluster forbids). On a cluster the streams
 * live in other slots: the script writes the state, then the acknowledgements follow as
 * Driver.ack() sends them (`atomicAck` false); a crash between the two leaves the deliveries pending,
 * and the record's applied positions let the engine recognise the redelivery and only acknowledge it.
 * load() is one script call for any number of keys. list() SCANs the group's records on the node
 * owning its slot; groups() SCANs every master for owner and state keys.
 *
 * A key whose state is set to null is deleted on a single node; on a cluster the engine writes a
 * tombstone instead (state `null`, applied positions kept, TOMBSTONE_MS in bus/keyed/owner.ts), so
 * "record removed, acknowledgement lost" is still recognised as applied.
 */
import type { Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { Delivery } from '../../bus/driver.js';
import { OwnershipLostError, TimeoutError } from '../../bus/errors.js';
import { killAfterStateWrite, type CommitResult, type Ownership, type StateRecord, type StateStore, type StateWrite, type WaitListing, type WaitRecord } from '../../bus/state.js';
import { isRedisError, type RedisStore } from './client.js';
import { delivery } from './delivery.js';
import { compareIds } from './keys.js';
import { claimExpired } from './scripts/lease.js';
import { commitStates, disownGroup, loadStates, ownGroup, stateSizes, type CommitWrite, type RawRecord } from './scripts/state.js';
import { eraseKey, indexStatus, indexWaits, markScanned, matchWait, openWait, removeWaits, waitFields, waitKeys, type RecordsAt } from './scripts/waits.js';

/** Entries one takeOver claim call moves (the cursor is followed to the end). */
const TAKEOVER_COUNT = 1000;
/** SCAN's COUNT hint for list() and groups(). */
const SCAN_COUNT = 1000;
/** Keys per load/sizes script call for very large requests (one call below this). */
const KEYS_PER_CALL = 5000;

/**
 * Wait and step records per script call (listing, indexing, erasing, removing): one call's work
 * stays bounded however many records a key or group holds (Redis runs nothing else meanwhile).
 */
const RECORDS_PER_CALL = 500;
/** Reads of records' key fields before removeWaits / indexWaits gives up, when each found them changed. */
const STALE_READS = 5;
/** Calls of eraseKey for one key, beyond the pages its index held, while records keep being added. */
const ERASE_RETRIES = 10;

/** Glob characters of a SCAN MATCH pattern, escaped. */
const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');

export class RedisState implements StateStore {
  readonly atomicAck: boolean;

  constructor(
    private readonly s: RedisStore,
    /** Driver.ack: what the cluster commit sends after the state script. */
    private readonly ack: (group: string, ds: Delivery[]) => Promise<void>,
  ) {
    this.atomicAck = !s.cluster;
  }

  async own(group: string, consumer: string, leaseMs: number): Promise<Ownership | null> {
    const { keys } = this.s;
    return ownGroup.call(this.s.cmd, keys.owner(group), keys.epoch(group), keys.indexEpochs(group), consumer, leaseMs);
  }

  async disown(group: string, consumer: string, epoch: number): Promise<void> {
    await disownGroup.call(this.s.cmd, this.s.keys.owner(group), `${epoch} ${consumer}`);
  }

  /**
   * XAUTOCLAIM with min-idle 0 over each topic's stream and the group's retry stream of it, to the
   * end of each cursor, through the read path's claim script (it returns each entry's delivery
   * count, which the claim grew by one). Ids trimmed while pending are acknowledged away, as the
   * read path does; a stream where the group does not exist yet has nothing to take.
   */
  async takeOver(group: string, consumer: string, topics: string[], maxBytes: number): Promise<Delivery[]> {
    const { cmd, keys } = this.s;
    const out: Delivery[] = [];
    for (const topic of topics) {
      for (const key of [keys.stream(topic), keys.retry(topic, group)]) {
        let cursor = '0-0';
        do {
          let reply;
          try {
            reply = await claimExpired.call(cmd, key, group, consumer, 0, cursor, TAKEOVER_COUNT);
          } catch (err) {
            if (isRedisError(err, 'NOGROUP')) break;
            throw err;
          }
          const [next, entries, deleted, counts] = reply;
          const gone = [...deleted, ...entries.filter(([, f]) => f === null).map(([id]) => id)];
          if (gone.length) await cmd.xack(key, group, ...gone);
          entries.forEach(([id, fields], i) => {
            if (fields !== null && counts[i] > 0) out.push(delivery(topic, key, id, Number(counts[i]), fields, maxBytes));
          });
          cursor = next;
        } while (cursor !== '0-0');
      }
    }
    return out;
  }

  async load(group: string, keys: string[]): Promise<Map<string, StateRecord>> {
    const out = new Map<string, StateRecord>();
    for (let i = 0; i < keys.length; i += KEYS_PER_CALL) {
      const part = keys.slice(i, i + KEYS_PER_CALL);
      const raws = await loadStates.call(this.s.cmd, part.map((k) => this.s.keys.state(group, k)));
      raws.forEach((raw, j) => {
        const r = record(raw);
        if (r) out.set(part[j], r);
      });
    }
    return out;
  }

  async commit(group: string, consumer: string, epoch: number, writes: StateWrite[], ack: Delivery[]): Promise<CommitResult> {
    const { keys } = this.s;
    const atomic = this.atomicAck;
    const none: Delivery[] = [];
    const scripted = writes.map((w): CommitWrite => {
      const applied = hasAny(w.applied) ? JSON.stringify(w.applied) : null;
      return {
        key: keys.state(group, w.key),
        expectVersion: w.expectVersion,
        state: w.state,
        applied,
        ttlMs: w.ttlMs,
        persist: w.noExpiry !== true,
        acks: atomic ? w.ack : none,
      };
    });
    const res = await commitStates.call(this.s.cmd, keys.owner(group), `${epoch} ${consumer}`, group, scripted, atomic ? ack : none);
    if (!res.ok) {
      throw new OwnershipLostError(
        `group ${JSON.stringify(group)} is not owned by ${JSON.stringify(consumer)} under epoch ${epoch} (owner now: ${res.owner ? JSON.stringify(res.owner) : 'none'}): commit refused, nothing written`,
      );
    }
    const conflicts = res.conflicts.map((i) => writes[i - 1].key);
    // The test hook's worst moment: after the commit (atomic), or after a state write and before its acks.
    if (atomic || writes.length > 0) killAfterStateWrite();
    if (!atomic) {
      const skipped = new Set(res.conflicts.map((i) => i - 1));
      const settled = [...writes.flatMap((w, i) => (skipped.has(i) ? [] : w.ack)), ...ack];
      if (settled.length) await this.ack(group, settled);
    }
    return { conflicts };
  }

  async get(group: string, key: string): Promise<StateRecord | null> {
    return (await this.load(group, [key])).get(key) ?? null;
  }

  /**
   * SCAN of the group's records on the node owning its slot, keeping the first `limit` keys after
   * `after` in key order (UTF-8 byte order, as SQLite's), then their sizes in one script call.
   */
  async list(group: string, q: { after?: string | undefined; limit: number }): Promise<Array<{ key: string; version: number; bytes: number; updatedAt: number }>> {
    const { keys } = this.s;
    const base = keys.state(group, '');
    const after = q.after === undefined ? null : Buffer.from(q.after);
    let page: Buffer[] = [];
    const trim = () => {
      page.sort(Buffer.compare);
      page = page.slice(0, q.limit);
    };
    await this.scanGroup(base, (key) => {
      if (after === null || Buffer.compare(key, after) > 0) page.push(key);
      if (page.length > 2 * q.limit + SCAN_COUNT) trim();
    });
    trim();
    if (page.length === 0) return [];
    const names = page.map((b) => b.toString());
    const sizes = await stateSizes.call(this.s.cmd, names.map((k) => keys.state(group, k)));
    return names.flatMap((key, i) => {
      const [v, t, bytes] = sizes[i];
      return v === null ? [] : [{ key, version: Number(v), bytes: Number(bytes), updatedAt: Number(t) }];
    });
  }

  /**
   * Calls `found` with the rest of each key name under `base` (a prefix in the group's slot), as
   * SCAN of the node owning that slot finds them.
   */
  private async scanGroup(base: string, found: (rest: Buffer) => void): Promise<void> {
    const nodes = this.s.cluster ? slotNodes(this.s.cmd as unknown as Cluster, base) : [this.s.cmd as unknown as Redis];
    const skip = Buffer.byteLength(base);
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, names] = (await node.scanBuffer(cursor, 'MATCH', `${globEscape(base)}*`, 'COUNT', SCAN_COUNT)) as unknown as [Buffer, Buffer[]];
        cursor = next.toString();
        for (const k of names) found(k.subarray(skip));
      } while (cursor !== '0');
    }
  }

  /**
   * Of one key: its index's members (ZSCAN, COUNT RECORDS_PER_CALL, after indexGroup), then the
   * fields of their records of the kind asked for (waitFields, every key declared),
   * RECORDS_PER_CALL a call; members whose record is gone (expired) are skipped. Of the whole
   * group: a SCAN of its wait records, then their fields the same way (a step's result only when
   * listing steps). Sorted by key (UTF-8 byte order, as SQLite's), deadline and id here (neither
   * SCAN nor the index has that order), the first `limit` kept.
   */
  async listWaits(group: string, q: { key?: string | undefined; limit: number; steps: boolean }): Promise<WaitListing[]> {
    const { keys } = this.s;
    const out: WaitListing[] = [];
    const ids: string[] = [];
    if (q.key !== undefined) {
      await this.indexGroup(group);
      const seen = new Set<string>(); // ZSCAN may return a member twice
      let cursor = '0';
      do {
        const [next, page] = await this.s.cmd.zscan(keys.waitIndex(group, q.key), cursor, 'COUNT', RECORDS_PER_CALL);
        cursor = next;
        for (let i = 0; i < page.length; i += 2) seen.add(page[i]);
      } while (cursor !== '0');
      ids.push(...seen);
    } else {
      await this.scanGroup(keys.wait(group, ''), (rest) => void ids.push(rest.toString()));
    }
    for (let i = 0; i < ids.length; i += RECORDS_PER_CALL) {
      const part = ids.slice(i, i + RECORDS_PER_CALL);
      const fields = await waitFields.call(this.s.cmd, part.map((id) => keys.wait(group, id)), q.steps);
      part.forEach((id, j) => {
        const [type, key, deadline, matched, result] = fields[j];
        if (type === null || key === null || (q.key !== undefined && key !== q.key)) return;
        out.push({ id, key, type, deadline: Number(deadline), matched: Number(matched) === 1, result: q.steps ? result : null });
      });
    }
    out.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) || a.deadline - b.deadline || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out.slice(0, q.limit);
  }

  /**
   * Per key (after indexGroup): the first RECORDS_PER_CALL members of its index (ZRANGE), then
   * eraseKey with the state hash, the index and those records declared: it deletes the state and
   * the records whose key field is the key, and takes them out of the index. Again while the index
   * has members: as many calls as its pages, plus at most ERASE_RETRIES while a handler of the key
   * still running creates records. A key counts when its state or a live record was deleted.
   */
  async remove(group: string, keys: string[]): Promise<number> {
    const k = this.s.keys;
    let n = 0;
    if (keys.length > 0) await this.indexGroup(group);
    for (const key of keys) {
      const index = k.waitIndex(group, key);
      let erased = false;
      let budget = Infinity;
      for (let round = 1; ; round++) {
        const ids = await this.s.cmd.zrange(index, '0', String(RECORDS_PER_CALL - 1));
        const r = await eraseKey.call(this.s.cmd, k.state(group, key), index, ids.map((id) => k.wait(group, id)), key, ids);
        erased ||= r.erased;
        if (r.left === 0) break;
        if (round === 1) budget = 1 + Math.ceil(r.left / RECORDS_PER_CALL) + ERASE_RETRIES;
        if (round >= budget) {
          throw new TimeoutError(`erasing key ${JSON.stringify(key)} of group ${JSON.stringify(group)}: its index still had ${r.left} records after ${round} calls (a handler of the key keeps creating them); its state and the records found so far are erased, call again once its handlers stop`);
        }
      }
      if (erased) n++;
    }
    return n;
  }

  /**
   * Makes sure every record of the group is in its key's index before a read or erasure by key.
   * Nothing to do when the group has no epoch counter (never owned, so no handler wrote a record:
   * a read of an unknown group name, e.g. the admin UI's, writes nothing), or when the current
   * epoch's owner is this version and a scan ran under this version's current unbroken run of
   * owners (indexStatus, scripts/waits.ts). Otherwise: a SCAN of the group's `wait:` prefix on the
   * node owning its slot (about a second per million keys there), indexWaits on what it found,
   * RECORDS_PER_CALL records a call, then markScanned when the current owner is this version (under
   * an earlier version's owner, every call scans). Records created meanwhile by this version are
   * indexed by openWait.
   */
  private async indexGroup(group: string): Promise<void> {
    const k = this.s.keys;
    const [epoch, owner, since, scanned] = await indexStatus.call(this.s.cmd, k.epoch(group), k.indexEpochs(group));
    if (epoch === 0) return;
    const indexing = owner === epoch;
    if (indexing && scanned >= since) return;
    const ids: string[] = [];
    await this.scanGroup(k.wait(group, ''), (rest) => void ids.push(rest.toString()));
    for (let i = 0; i < ids.length; i += RECORDS_PER_CALL) {
      const part = ids.slice(i, i + RECORDS_PER_CALL);
      await this.byKeyField(group, part, (at) => indexWaits.call(this.s.cmd, at));
    }
    if (indexing) await markScanned.call(this.s.cmd, k.indexEpochs(group), epoch);
  }

  /** SCAN of every master for `{agentbus:<group>}` keys: a group with an owner or a record is listed. */
  async groups(): Promise<string[]> {
    const { prefix } = this.s.keys;
    const head = `${prefix}{agentbus:`;
    const found = new Set<string>();
    for (const node of this.s.cluster ? (this.s.cmd as unknown as Cluster).nodes('master') : [this.s.cmd]) {
      let cursor = '0';
      do {
        const [next, names] = (await node.scan(cursor, 'MATCH', `${globEscape(head)}*`, 'COUNT', SCAN_COUNT)) as [string, string[]];
        cursor = next;
        for (const name of names) {
          const end = name.indexOf('}', head.length);
          if (end < 0) continue;
          const rest = name.slice(end + 1);
          if (rest === ':owner' || rest.startsWith(':state:')) found.add(name.slice(head.length, end));
        }
      } while (cursor !== '0');
    }
    return [...found].sort();
  }

  async openWait(group: string, id: string, wait: { type: string; key: string; deadline: number }, ttlMs: number): Promise<WaitRecord> {
    const { keys } = this.s;
    const [type, key, deadline, matched] = await openWait.call(this.s.cmd, keys.wait(group, id), keys.waitIndex(group, wait.key), id, wait.type, wait.key, wait.deadline, ttlMs);
    return { type: type ?? wait.type, key: key ?? wait.key, deadline: deadline === null ? wait.deadline : Number(deadline), matched };
  }

  async matchWait(group: string, id: string, event: string): Promise<string | null> {
    return matchWait.call(this.s.cmd, this.s.keys.wait(group, id), event);
  }

  /**
   * Per RECORDS_PER_CALL ids, two script calls: the records' key fields (waitKeys), then
   * removeWaits with the records and their indexes declared (all in the group's slot); resolves
   * how many existed.
   */
  async removeWaits(group: string, ids: string[]): Promise<number> {
    let n = 0;
    for (let i = 0; i < ids.length; i += RECORDS_PER_CALL) {
      n += await this.byKeyField(group, ids.slice(i, i + RECORDS_PER_CALL), (at) => removeWaits.call(this.s.cmd, at));
    }
    return n;
  }

  /**
   * Reads the key field of records `ids` (waitKeys), then runs `script` with them and their
   * indexes declared (RecordsAt); again, up to STALE_READS reads, while it answers -1 (a key field
   * changed in between: a record created or replaced meanwhile).
   */
  private async byKeyField(group: string, ids: string[], script: (at: RecordsAt) => Promise<number>): Promise<number> {
    const k = this.s.keys;
    const records = ids.map((id) => k.wait(group, id));
    for (let read = 1; ; read++) {
      const fields = await waitKeys.call(this.s.cmd, records);
      const indexes: string[] = [];
      const position = new Map<string, number>();
      const at = fields.map((key) => {
        if (key === null) return 0;
        if (!position.has(key)) position.set(key, indexes.push(k.waitIndex(group, key)));
        return position.get(key)!;
      });
      const n = await script({ records, indexes, ids, at, keys: fields.map((key) => key ?? '') });
      if (n >= 0) return n;
      if (read >= STALE_READS) {
        throw new TimeoutError(`wait records of group ${JSON.stringify(group)} changed under each of ${read} reads of their keys (records created or replaced meanwhile): nothing done, try again`);
      }
    }
  }

  comparePositions(a: string, b: string): number {
    return compareIds(a, b);
  }
}

function hasAny(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** A stored record, or null when the hash is gone (never written, deleted or expired). */
function record([v, s, a, t]: RawRecord): StateRecord | null {
  if (v === null || s === null) return null;
  return { version: Number(v), state: s, applied: a ? (JSON.parse(a) as Record<string, string>) : {}, updatedAt: Number(t) };
}

/** The master serving `key`'s slot on a cluster (from the client's slot table), or every master when it is not known yet. */
function slotNodes(cluster: Cluster, key: string): Redis[] {
  const owner = cluster.slots[calculateSlot(key)]?.[0];
  const masters = cluster.nodes('master');
  const node = masters.find((n) => `${n.options.host}:${n.options.port}` === owner);
  return node ? [node] : masters;
}
