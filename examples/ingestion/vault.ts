// The DataVault store: PII anonymised with a keyed hash, the record encrypted with AES-256-GCM,
// one row per record id in a SQLite file.
import Database from 'better-sqlite3';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface RawRecord {
  record_id: string;
  name: string;
  email: string;
  ssn: string;
  notes: string;
}

/** INGEST_KEY: 32 bytes as 64 hex characters. Anything else is refused, naming the variable. */
export function loadKey(env = process.env): Buffer {
  const hex = env.INGEST_KEY ?? '';
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new Error(`INGEST_KEY ${hex ? 'is not 64 hex characters' : 'is not set'}: the ingestion agent needs a 32-byte key (e.g. \`openssl rand -hex 32\`) and will not start without one`);
  }
  return Buffer.from(hex, 'hex');
}

export class Vault {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly select: Database.Statement;
  private readonly encKey: Buffer;
  private readonly hashKey: Buffer;

  constructor(path: string, key: Buffer) {
    // Two keys from one: encryption and the PII hash never share key material.
    this.encKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'datavault encryption', 32));
    this.hashKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'datavault pii hash', 32));
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS records (
      record_id TEXT PRIMARY KEY, name_hash TEXT NOT NULL, email_hash TEXT NOT NULL,
      iv BLOB NOT NULL, tag BLOB NOT NULL, ciphertext BLOB NOT NULL, stored_at INTEGER NOT NULL)`);
    this.insert = this.db.prepare('INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.select = this.db.prepare('SELECT * FROM records WHERE record_id = ?');
  }

  /** Keyed hash of a PII value: stable for joins and lookups, useless without the key. */
  anonymise(value: string): string {
    return createHmac('sha256', this.hashKey).update(value.trim().toLowerCase()).digest('hex');
  }

  /** Stores once per record id; returns false when it was already stored (a redelivery). Committed on return. */
  store(r: RawRecord): boolean {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.encKey, iv);
    cipher.setAAD(Buffer.from(r.record_id)); // a ciphertext cannot be moved to another id
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(r)), cipher.final()]);
    return this.insert.run(r.record_id, this.anonymise(r.name), this.anonymise(r.email), iv, cipher.getAuthTag(), ciphertext, Date.now()).changes === 1;
  }

  retrieve(id: string): (RawRecord & { name_hash: string; email_hash: string }) | null {
    const row = this.select.get(id) as { record_id: string; name_hash: string; email_hash: string; iv: Buffer; tag: Buffer; ciphertext: Buffer } | undefined;
    if (!row) return null;
    const decipher = createDecipheriv('aes-256-gcm', this.encKey, row.iv);
    decipher.setAAD(Buffer.from(row.record_id));
    decipher.setAuthTag(row.tag);
    const plain = JSON.parse(Buffer.concat([decipher.update(row.ciphertext), decipher.final()]).toString('utf8')) as RawRecord;
    return { ...plain, name_hash: row.name_hash, email_hash: row.email_hash };
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}
