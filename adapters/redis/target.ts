/**
 * Where the Redis bus connects, said without the password, and how text from elsewhere (ioredis
 * and server error messages) loses any form of it before the bus logs or throws it.
 *
 * Logs and errors name the target as `redis://[user@]host:port/db` (`rediss://` with TLS), built
 * from the options ioredis parsed, never from the URL as given: a password holding an unescaped
 * `@` or `:` cannot be cut apart by a pattern if no pattern ever sees it.
 */
import type { RedisOptions } from 'ioredis';
import { invalid } from '../../bus/errors.js';

/** Largest database number accepted (Redis' `databases` setting is an int). */
export const MAX_DB = 2_147_483_647;

const URL_HINT = "expected redis[s]://[user:password@]host:port[/db], with '/', '?', '#' and '%' in the password percent-encoded";

/** `redis://[user@]host:port/db`, or `unix:<path>/db`, from parsed ioredis options. */
export function describeTarget(o: Pick<RedisOptions, 'host' | 'port' | 'db' | 'username' | 'tls' | 'path'>): string {
  if (o.path) return `unix:${o.path}/${o.db ?? 0}`;
  const user = o.username ? `${o.username}@` : '';
  return `${o.tls ? 'rediss' : 'redis'}://${user}${o.host ?? 'localhost'}:${o.port ?? 6379}/${o.db ?? 0}`;
}

/**
 * A function that replaces every occurrence of each password, in every form it can take in text
 * (as given, percent-encoded as a URL component, as a URL's userinfo or query would hold it,
 * decoded), with `***`. Longest forms first, so a form inside another leaves no tail behind.
 */
export function scrubber(passwords: Array<string | undefined>): (text: string) => string {
  const forms = new Set<string>();
  for (const p of passwords) {
    if (typeof p !== 'string' || p === '') continue;
    const u = new URL('redis://h');
    u.password = p;
    for (const f of [p, encodeURIComponent(p), encodeURI(p), u.password, new URLSearchParams({ p }).toString().slice(2), tryDecode(p)]) {
      if (f) forms.add(f);
    }
  }
  const list = [...forms].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = String(text);
    for (const f of list) out = out.split(f).join('***');
    return out;
  };
}

/**
 * Every password a Redis URL carries, as written and decoded: its userinfo part (up to the last
 * `@` before the host, as URL parsers read it) and any `password=` query value.
 */
export function urlPasswords(url: string): string[] {
  const found: string[] = [];
  const auth = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url)?.[1];
  if (auth !== undefined && auth.includes(':')) found.push(auth.slice(auth.indexOf(':') + 1));
  for (const m of url.matchAll(/[?&]password=([^&#]*)/gi)) {
    found.push(m[1]);
    try {
      found.push(new URLSearchParams(`p=${m[1]}`).get('p') ?? '');
    } catch {
      /* kept as written */
    }
  }
  return found.flatMap((p) => [p, tryDecode(p)]).filter((p): p is string => !!p);
}

/**
 * Checks a `redis://` or `rediss://` URL before ioredis reads it: it must parse, its user:password
 * part must be where the host is expected (an unescaped `/`, `?` or `#` in a password moves the
 * rest into the path or query), and its database (`/N` or `?db=N`) must be an integer from 0 to
 * MAX_DB. ioredis itself would read `/abc` as no database and `/-1` or `/1x` as some other one.
 * Messages never repeat the URL; `scrub` cleans the one value they name.
 */
export function checkUrl(url: string, scrub: (s: string) => string): void {
  // ioredis takes any other text as a socket path: `http://host:port` or `redis//host:port` would fail later as "no such file".
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  if (scheme !== undefined && !/^rediss?$/i.test(scheme)) throw invalid('INVALID_OPTION', `invalid Redis URL (url or REDIS_URL): scheme "${scheme}:"; ${URL_HINT}`);
  if (scheme === undefined && url.includes('//')) throw invalid('INVALID_OPTION', `invalid Redis URL (url or REDIS_URL): no scheme before '//'; ${URL_HINT}`);
  if (scheme === undefined) return; // host:port and socket paths: ioredis' own forms, checked after parsing
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // A port is no secret: name it when it is what fails.
    const port = /:(\d+)(?:[/?#]|$)/.exec(url.slice(url.lastIndexOf('@') + 1))?.[1];
    if (port !== undefined && Number(port) > 65535) throw invalid('INVALID_OPTION', `invalid Redis URL (url or REDIS_URL): port ${port}, expected 1 to 65535; ${URL_HINT}`);
    throw invalid('INVALID_OPTION', `invalid Redis URL (url or REDIS_URL): it does not parse; ${URL_HINT}`);
  }
  if (!u.username && !u.password && url.includes('@') && !u.searchParams.has('password')) {
    throw invalid('INVALID_OPTION', `invalid Redis URL (url or REDIS_URL): its '@' is not between user:password and the host; ${URL_HINT}`);
  }
  if (u.password) {
    try {
      decodeURIComponent(u.password);
    } catch {
      throw invalid('INVALID_OPTION', `invalid Redis URL (url or REDIS_URL): the password is not valid percent-encoding; ${URL_HINT}`);
    }
  }
  const db = u.pathname && u.pathname !== '/' ? u.pathname.slice(1) : u.searchParams.get('db');
  if (db !== null) dbNumber(`database ${JSON.stringify(scrub(db))} in the Redis URL (url or REDIS_URL)`, db);
}

/** A database number given as text (`REDIS_DB`, a URL path): digits only, 0 to MAX_DB. */
export function dbNumber(what: string, v: string): number {
  const n = /^\d{1,10}$/.test(v) ? Number(v) : NaN;
  if (!(n <= MAX_DB)) throw invalid('INVALID_OPTION', `invalid ${what}: expected an integer from 0 to ${MAX_DB}`);
  return n;
}

function tryDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}
