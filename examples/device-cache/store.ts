// The latest metadata per device, with a TTL, on Redis (a hash per device plus a set of ids, as
// seed 002 lays it out) or on SQLite (one table with an expiry column). Both keep a newer write
// when an older event arrives late.
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Metadata {
  datatype_id: string | null;
  datatype_name: string | null;
  datatype_unit: string | null;
  persist: boolean;
}

export interface DeviceRecord extends Metadata {
  device_id: string;
  /** Epoch ms of the event this metadata came from. */
  last_updated: number;
}

export interface DeviceStore {
  /** Stores unless the stored record is as new or newer; true when it stored. */
  put(r: DeviceRecord, ttlSeconds: number): Promise<boolean>;
  get(id: string): Promise<DeviceRecord | null>;
  /** One round trip for all ids; null where a device is unknown or expired. */
  getMany(ids: string[]): Promise<(DeviceRecord | null)[]>;
  close(): Promise<void>;
}

/** KEYS: the device hash, the ids set. ARGV: id, last_updated, ttl, then field/value pairs. */
const PUT_IF_NEWER = `
local cur = redis.call('HGET', KEYS[1], 'last_updated')
if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'last_updated', ARGV[2], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1`;

export class RedisDeviceStore implements DeviceStore {
  private readonly redis: Redis;
  constructor(url: string) {
    this.redis = new Redis(url);
    this.redis.defineCommand('putIfNewer', { numberOfKeys: 2, lua: PUT_IF_NEWER });
  }
  async put(r: DeviceRecord, ttl: number): Promise<boolean> {
    const fields = ['datatype_id', r.datatype_id ?? '', 'datatype_name', r.datatype_name ?? '', 'datatype_unit', r.datatype_unit ?? '', 'persist', String(r.persist)];
    const put = (this.redis as unknown as { putIfNewer(...a: unknown[]): Promise<number> }).putIfNewer;
    return (await put.call(this.redis, `device:${r.device_id}:metadata`, 'devices', r.device_id, r.last_updated, ttl, ...fields)) === 1;
  }
  async get(id: string): Promise<DeviceRecord | null> {
    return (await this.getMany([id]))[0];
  }
  async getMany(ids: string[]): Promise<(DeviceRecord | null)[]> {
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(`device:${id}:metadata`);
    const res = (await p.exec()) ?? [];
    return res.map(([err, h], i) => (err || !h || !(h as Record<string, string>).last_updated ? null : fromHash(ids[i], h as Record<string, string>)));
  }
  async close(): Promise<void> {
    await this.redis.quit();
  }
}

function fromHash(id: string, h: Record<string, string>): DeviceRecord {
  return {
    device_id: id,
    datatype_id: h.datatype_id || null,
    datatype_name: h.datatype_name || null,
    datatype_unit: h.datatype_unit || null,
    persist: h.persist === 'true',
    last_updated: Number(h.last_updated),
  };
}

export class SqliteDeviceStore implements DeviceStore {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly select: Database.Statement;
  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS devices (
      device_id TEXT PRIMARY KEY, metadata TEXT NOT NULL, last_updated INTEGER NOT NULL, expires_at INTEGER NOT NULL)`);
    // The WHERE keeps a newer row when an older event arrives late.
    this.upsert = this.db.prepare(`INSERT INTO devices VALUES (?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET metadata = excluded.metadata, last_updated = excluded.last_updated, expires_at = excluded.expires_at
      WHERE excluded.last_updated > devices.last_updated OR devices.expires_at <= unixepoch('subsec') * 1000`);
    this.select = this.db.prepare('SELECT * FROM devices WHERE device_id = ? AND expires_at > ?');
  }
  async put(r: DeviceRecord, ttl: number): Promise<boolean> {
    const { device_id, last_updated, ...metadata } = r;
    return this.upsert.run(device_id, JSON.stringify(metadata), last_updated, Date.now() + ttl * 1000).changes === 1;
  }
  async get(id: string): Promise<DeviceRecord | null> {
    const row = this.select.get(id, Date.now()) as { device_id: string; metadata: string; last_updated: number } | undefined;
    return row ? { device_id: row.device_id, last_updated: row.last_updated, ...(JSON.parse(row.metadata) as Metadata) } : null;
  }
  async getMany(ids: string[]): Promise<(DeviceRecord | null)[]> {
    return Promise.all(ids.map((id) => this.get(id)));
  }
  async close(): Promise<void> {
    this.db.close();
  }
}

/** Redis when the bus runs on Redis (REDIS_URL), else a SQLite file (DEVICE_CACHE_DB). */
export function openStore(env = process.env): DeviceStore {
  if (env.AGENTBUS_ADAPTER === 'redis') return new RedisDeviceStore(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  return new SqliteDeviceStore(env.DEVICE_CACHE_DB ?? './data/device-cache.db');
}
