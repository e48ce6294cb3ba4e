import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { DEFAULT_SQLITE_PATH } from '../adapters/sqlite/index.js';
import { diskSpace, minFreeBytes } from '../adapters/sqlite/pressure.js';
import { formatBytes } from '../bus/pressure.js';
import type { Finding, Status } from '../adapters/redis/findings.js';
import { AgentbusError, ConfigurationError } from '../bus/errors.js';
import { createBus } from './config.js';

/**
 * `agentbus doctor`: connects to the store `agentbus start` would use (same environment) and checks
 * what it needs. Redis: can connect and authenticate, then the checks the Redis adapter runs at
 * every connect (version, role, eviction policy, durability, clock, cluster slots), read from the
 * log records it writes, so the doctor and `start` never disagree. SQLite: the file exists and opens
 * (it is never created), WAL, free disk space, PRAGMA quick_check.
 */

/** Free space under the SQLite file's folder below the smaller of these is a warning (one definition, shared with the bus' own warning). */
export { MIN_FREE_BYTES, MIN_FREE_RATIO } from '../adapters/sqlite/pressure.js';

export interface DoctorFlags {
  json: boolean;
  /** Warnings only exit 2 (otherwise 0). */
  strict: boolean;
}

/** Exit code: 1 when a check failed, 2 on warnings only with `strict`, else 0. */
export function exitCode(findings: Finding[], strict: boolean): number {
  if (findings.some((f) => f.status === 'fail')) return 1;
  return strict && findings.some((f) => f.status === 'warn') ? 2 : 0;
}

export async function doctor(flags: DoctorFlags, env: NodeJS.ProcessEnv = process.env, out: (line: string) => void = console.log): Promise<number> {
  const adapter = env.AGENTBUS_ADAPTER || 'sqlite';
  const findings =
    adapter === 'sqlite'
      ? sqliteChecks(env.AGENTBUS_SQLITE_PATH || DEFAULT_SQLITE_PATH)
      : adapter === 'redis'
        ? await redisChecks(env)
        : [{ check: 'adapter', status: 'fail' as const, result: `unknown adapter ${JSON.stringify(adapter)} (AGENTBUS_ADAPTER)`, fix: 'set AGENTBUS_ADAPTER to sqlite or redis' }];
  const status: Status = findings.some((f) => f.status === 'fail') ? 'fail' : findings.some((f) => f.status === 'warn') ? 'warn' : 'ok';
  if (flags.json) out(JSON.stringify({ adapter, status, checks: findings }, null, 2));
  else {
    // CHECK and RESULT aligned; the detail fills the line, what to do goes under it.
    const rows = findings.map((f) => [f.node ? `${f.check} ${f.node}` : f.check, f.status === 'fail' ? 'FAIL' : f.status]);
    const w = [Math.max(5, ...rows.map((r) => r[0].length)), 6];
    const indent = ' '.repeat(w[0] + w[1] + 4);
    out(`${'CHECK'.padEnd(w[0])}  ${'RESULT'.padEnd(w[1])}  DETAIL / WHAT TO DO`);
    findings.forEach((f, i) => {
      out(`${rows[i][0].padEnd(w[0])}  ${rows[i][1].padEnd(w[1])}  ${f.result}`);
      if (f.fix) out(`${indent}-> ${f.fix}`);
    });
    const n = (s: Status) => findings.filter((f) => f.status === s).length;
    out(status === 'ok' ? `\n${adapter}: all checks passed` : `\n${adapter}: ${n('fail')} failed, ${n('warn')} warning${n('warn') === 1 ? '' : 's'}`);
  }
  return exitCode(findings, flags.strict);
}

/** Connects exactly as `start` does; the adapter's own checks arrive as log records carrying `check`. */
async function redisChecks(env: NodeJS.ProcessEnv): Promise<Finding[]> {
  const records: Finding[] = [];
  const logger = pino({ level: 'debug' }, {
    write: (line: string) => {
      const r = JSON.parse(line) as Partial<Finding>;
      if (typeof r.check === 'string' && typeof r.result === 'string') records.push({ check: r.check, status: r.status!, result: r.result, ...(r.fix ? { fix: r.fix } : {}), ...(r.node ? { node: r.node } : {}) });
    },
  });
  const connected: Finding = { check: 'connect', status: 'ok', result: 'connected and authenticated (PING answered)' };
  try {
    const bus = await createBus({ adapter: 'redis', logger, spool: false, moveDue: false }, env); // checks Redis, not the spool (a host may hold it)
    await bus.close();
    return [connected, ...records];
  } catch (err) {
    const e = err as Error;
    if (e instanceof ConfigurationError) return [connected, ...records]; // the refusal is among the records
    const auth = /WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username/i.test(e.message);
    return [
      {
        check: auth ? 'auth' : 'connect',
        status: 'fail',
        result: e instanceof AgentbusError ? `${e.code}: ${e.message}` : e.message,
        fix: auth ? 'check REDIS_USERNAME / REDIS_PASSWORD (or the user in REDIS_URL)' : 'check REDIS_URL (or REDIS_HOST / REDIS_PORT, REDIS_CLUSTER_NODES, REDIS_SENTINELS) and that Redis is up',
      },
      ...records,
    ];
  }
}

function sqliteChecks(path: string): Finding[] {
  if (path === ':memory:') return [{ check: 'sqlite-file', status: 'info', result: ':memory: lives inside one process; nothing on disk to check' }];
  const file = resolve(path);
  const findings: Finding[] = [];
  if (!existsSync(file)) {
    findings.push({ check: 'sqlite-file', status: 'fail', result: `no database at ${file}`, fix: 'check AGENTBUS_SQLITE_PATH; agentbus start creates the file' });
  } else {
    let db: Database.Database | null = null;
    try {
      db = new Database(file, { fileMustExist: true });
      const mode = String(db.pragma('journal_mode', { simple: true }));
      findings.push({ check: 'sqlite-file', status: 'ok', result: `opened ${file}` });
      findings.push(
        mode === 'wal'
          ? { check: 'journal-mode', status: 'ok', result: 'wal' }
          : { check: 'journal-mode', status: 'warn', result: `journal_mode ${mode}, not wal: processes sharing the file block each other`, fix: 'agentbus start sets WAL; another program changed it (PRAGMA journal_mode=WAL)' },
      );
      const check = (db.pragma('quick_check') as { quick_check: string }[]).map((r) => r.quick_check);
      findings.push(
        check.length === 1 && check[0] === 'ok'
          ? { check: 'integrity', status: 'ok', result: 'quick_check ok' }
          : { check: 'integrity', status: 'fail', result: `quick_check: ${check.slice(0, 3).join('; ')}`, fix: 'stop the hosts, restore a backup or recover the file (sqlite3 .recover)' },
      );
    } catch (err) {
      findings.push({ check: 'sqlite-file', status: 'fail', result: `cannot open ${file}: ${(err as Error).message}`, fix: 'check the path, its permissions, and that it is an agentbus database' });
    } finally {
      db?.close();
    }
  }
  // The folder may not exist yet: measure the nearest one that does.
  const space = diskSpace(dirname(file));
  findings.push(diskFinding(space.freeBytes, space.totalBytes, space.dir));
  return findings;
}

/** Free space against the smaller of MIN_FREE_BYTES and MIN_FREE_RATIO of the file system (minFreeBytes). */
export function diskFinding(free: number, total: number, dir: string): Finding {
  const need = minFreeBytes(total);
  const result = `${formatBytes(free)} free of ${formatBytes(total)} under ${dir}`;
  if (free >= need) return { check: 'disk-space', status: 'ok', result };
  return { check: 'disk-space', status: 'warn', result: `${result} (below ${formatBytes(need)})`, fix: 'free space or move AGENTBUS_SQLITE_PATH: a full disk makes every publish fail; set retention to bound the file' };
}
