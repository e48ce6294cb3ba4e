/**
 * SQLite disk pressure and refused writes, for `bus.health()` (metrics, readiness, warnings) and
 * `agentbus doctor`: file and WAL sizes, the file system under the file, a WAL a checkpoint cannot
 * empty, and appends the disk refused. Every reading is three stat calls; topic sizes are
 * estimated from a sample, cached, refreshed at most every 30 s for at most 50 topics.
 */
import { existsSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { StoreHealth } from '../../bus/contract.js';
import type { Driver } from '../../bus/driver.js';
import { formatBytes, watchAppends } from '../../bus/pressure.js';

/** Free space under the file below the smaller of these is a warning (here and in `agentbus doctor`). */
export const MIN_FREE_BYTES = 1024 ** 3;
export const MIN_FREE_RATIO = 0.1;
/** The free space a file system of `totalBytes` should keep: the smaller of MIN_FREE_BYTES and MIN_FREE_RATIO of it. */
export const minFreeBytes = (totalBytes: number) => Math.min(MIN_FREE_BYTES, totalBytes * MIN_FREE_RATIO);

/** Default `walWarnBytes`: a WAL larger than this is a warning (a checkpoint cannot finish). */
export const DEFAULT_WAL_WARN_BYTES = 64 * 1024 ** 2;
/**
 * After SQLITE_FULL, the disk counts as taking writes again once this much more than the refused
 * write is free. A small test write proves nothing: the WAL reuses space it already holds, so a
 * tiny commit succeeds on a full disk, and a rolled-back one never reaches the disk at all.
 */
const FULL_MARGIN_BYTES = 1024 ** 2;
export const TOPIC_SIZE_EVERY_MS = 30_000;
export const TOPIC_SIZE_MAX = 50;
/** Topic bytes = its length x the mean body size of its newest this-many events. */
const TOPIC_SIZE_SAMPLE = 100;

/** Free and total bytes of the file system holding `dir` (or its nearest existing ancestor). */
export function diskSpace(dir: string): { dir: string; freeBytes: number; totalBytes: number } {
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const fs = statfsSync(dir);
  return { dir, freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize };
}

const size = (file: string) => {
  try {
    return statSync(file).size;
  } catch {
    return 0; // no WAL (yet, or checkpointed away)
  }
};

/** An append error that means the store refuses writes: SQLITE_FULL, SQLITE_READONLY*, SQLITE_IOERR*. */
function refusalOf(err: unknown): { code: string; reason: string } | null {
  const code = String((err as { code?: unknown })?.code ?? '');
  return /^SQLITE_(FULL|READONLY|IOERR)/.test(code) ? { code, reason: `${code}: ${(err as Error).message}` } : null;
}

export class SqlitePressure {
  private refused: { code: string; reason: string; bytes: number } | null = null;
  private readonly sizes = new Map<string, number>();
  private sizedAt = 0;
  private next = 0;
  private readonly sizeOf;

  constructor(
    private readonly db: Database,
    /** The resolved file, or null for `:memory:`. */
    private readonly file: string | null,
    private readonly walWarnBytes: number,
  ) {
    this.sizeOf = db.prepare(
      `SELECT (SELECT COUNT(*) FROM events WHERE topic = @t) *
              (SELECT AVG(octet_length(body)) FROM (SELECT body FROM events WHERE topic = @t ORDER BY seq DESC LIMIT ${TOPIC_SIZE_SAMPLE})) AS bytes`,
    );
  }

  /** Watches the driver's appends and gives it `health()`. */
  watch<D extends Driver>(driver: D): D {
    watchAppends(driver, {
      failed: (err, entries) => {
        const r = refusalOf(err);
        if (r !== null) this.refused = { ...r, bytes: entries.reduce((n, e) => n + e.body.length, 0) };
      },
      stored: () => void (this.refused = null),
    });
    driver.admin.health = async (topics) => this.health(topics);
    return driver;
  }

  private health(topics: string[]): StoreHealth {
    const warnings: StoreHealth['warnings'] = [];
    let disk: StoreHealth['disk'];
    if (this.file !== null) {
      const space = diskSpace(dirname(this.file));
      disk = { path: this.file, fileBytes: size(this.file), walBytes: size(`${this.file}-wal`), freeBytes: space.freeBytes, totalBytes: space.totalBytes };
      const need = minFreeBytes(space.totalBytes);
      if (space.freeBytes < need) {
        warnings.push({
          key: `disk:${space.dir}`,
          message: `${formatBytes(space.freeBytes)} free of ${formatBytes(space.totalBytes)} under ${space.dir} (below ${formatBytes(need)}): a full disk makes every publish fail; free space, set retention, or move AGENTBUS_SQLITE_PATH`,
        });
      }
      if (disk.walBytes > this.walWarnBytes) {
        warnings.push({
          key: `wal:${this.file}`,
          message:
            `the WAL ${this.file}-wal is ${formatBytes(disk.walBytes)}, past ${formatBytes(this.walWarnBytes)} (walWarnBytes): a checkpoint cannot finish while a reader ` +
            'keeps an old snapshot open (a long read transaction: a sqlite3 shell, a backup, a stuck process); the file grows with every write until it ends',
        });
      }
    }
    return { refused: this.probe(disk?.freeBytes), warnings, ...(disk ? { disk } : {}), topics: this.topicSizes(topics) };
  }

  /**
   * While refused, whether a write would be taken now. SQLITE_FULL: the file system has the
   * refused write's size plus FULL_MARGIN_BYTES free again. READONLY and IOERR: a real commit
   * (`PRAGMA user_version` written with its own value), since the file's permissions or the device
   * are what refused; a busy lock proves nothing and keeps the state.
   */
  private probe(freeBytes: number | undefined): string | null {
    const r = this.refused;
    if (r === null) return null;
    if (r.code === 'SQLITE_FULL' && freeBytes !== undefined) {
      if (freeBytes >= r.bytes + FULL_MARGIN_BYTES) this.refused = null;
    } else {
      try {
        this.db.pragma(`user_version = ${Number(this.db.pragma('user_version', { simple: true }))}`);
        this.refused = null;
      } catch (err) {
        const again = refusalOf(err);
        if (again !== null) this.refused = { ...again, bytes: r.bytes };
      }
    }
    return this.refused?.reason ?? null;
  }

  private topicSizes(topics: string[]): StoreHealth['topics'] {
    if (topics.length > 0 && Date.now() - this.sizedAt >= TOPIC_SIZE_EVERY_MS) {
      this.sizedAt = Date.now();
      const wanted = new Set(topics);
      for (const t of this.sizes.keys()) if (!wanted.has(t)) this.sizes.delete(t);
      const start = this.next % topics.length;
      const batch = [...topics.slice(start), ...topics.slice(0, start)].slice(0, TOPIC_SIZE_MAX);
      this.next = start + batch.length;
      for (const t of batch) {
        try {
          this.sizes.set(t, Math.round(Number((this.sizeOf.get({ t }) as { bytes: number | null }).bytes ?? 0)));
        } catch (err) {
          if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err; // busy: measured next time
        }
      }
    }
    return topics.filter((t) => this.sizes.has(t)).map((t) => ({ type: t, bytes: this.sizes.get(t)! }));
  }
}
