import { createHash, createHmac } from 'node:crypto';
import { DuplicateError, type AuthStore, type ClientRecord, type OAuthRecord, type UserRecord } from '../auth-store.ts';
import type { DataKey } from '../../crypto/data-keys.ts';
import { openVersioned, sealedVersion, sealVersioned } from '../../crypto/aead.ts';
import { pgCode, pgCodes, type Database } from './database.ts';
import { ensureSchema, migrate } from './migrate.ts';
import { listen } from './listen.ts';

const authSteps = [
  // 1: users, clients, and the OAuth core's records; every record sealed (see PgAuthStore).
  `
  CREATE TABLE auth_users (id TEXT PRIMARY KEY, username_mac TEXT NOT NULL UNIQUE, record BYTEA NOT NULL);
  CREATE TABLE auth_clients (client_id TEXT PRIMARY KEY, record BYTEA NOT NULL);
  CREATE TABLE auth_oauth (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BYTEA NOT NULL,
    grant_mac TEXT,
    uid_mac TEXT,
    user_code_mac TEXT,
    expires_at BIGINT,
    consumed BIGINT,
    PRIMARY KEY (model, key)
  );
  CREATE INDEX auth_oauth_grant ON auth_oauth (grant_mac) WHERE grant_mac IS NOT NULL;
  CREATE INDEX auth_oauth_uid ON auth_oauth (model, uid_mac) WHERE uid_mac IS NOT NULL;
  CREATE INDEX auth_oauth_user_code ON auth_oauth (model, user_code_mac) WHERE user_code_mac IS NOT NULL;
  CREATE INDEX auth_oauth_expiry ON auth_oauth (expires_at) WHERE expires_at IS NOT NULL;
  `,
];

export interface PgAuthStoreOptions {
  /** The pool; the caller's, left open by close(), unless `ownsDb`. */
  db: Database;
  /** close() ends the pool too (a pool made for this store alone). */
  ownsDb?: boolean;
  /** The 256-bit key records are sealed under from now on (AES-256-GCM); ciphertexts name its version. */
  key: DataKey;
  /**
   * Older versions of the key, for records sealed before a rotation (undefined: that version is
   * unknown or retired, and what it sealed cannot be read). Without it only `key` opens records.
   */
  keyByVersion?: (version: number) => DataKey | undefined;
  /**
   * The HMAC-SHA-256 key of the lookup columns (usernames, session uids, device user codes, grant
   * ids), at least 256 bits. It must stay the same for the life of the tables: the rows are found
   * by it, so another key finds nothing (a change of it means recomputing those columns from the
   * opened records). The deployment's `blind-index` data key suits it: the inputs here are
   * domain-separated (`bastion-auth:<column>:`), so they never meet a resource's blind index.
   */
  lookupKey: Buffer;
}

/** A protocol record carried over from another store (see PgAuthStore.importOAuth). */
export interface ImportedOAuthRecord {
  model: string;
  /** The SHA-256 digest of the record's id (base64url), as both stores key records. */
  key: string;
  /** The payload's JSON text. */
  payload: string;
  grantId: string | null;
  uid: string | null;
  userCode: string | null;
  /** Epoch seconds. */
  expiresAt: number | null;
  consumed: number | null;
}

/** A stored record that does not open: altered, moved from another row, or sealed under a key this node lacks. */
export class UnreadableAuthRecordError extends Error {}

interface OAuthRow {
  model: string;
  key: string;
  payload: Buffer;
  grant_mac: string | null;
  uid_mac: string | null;
  user_code_mac: string | null;
  expires_at: number | null;
  consumed: number | null;
}

interface UserRow { id: string; username_mac: string; record: Buffer }

const oauthColumns = 'model, key, payload, grant_mac, uid_mac, user_code_mac, expires_at, consumed';

/**
 * The authorization server's state in PostgreSQL, for several nodes on one database. Semantics are
 * those of the embedded store (src/store/sqlite/auth-db.ts): OAuth records keyed by the SHA-256 of
 * their id (no usable bearer secret as a key), an expired record reads as absent and a sweep
 * removes expired ones at most once a minute (per node), consume is a compare-and-set, duplicates
 * are DuplicateError. Nothing is cached: every call reads the tables, so a write on one node is
 * seen by the others at once, and a consume is one atomic `UPDATE ... WHERE consumed IS NULL`.
 *
 * Unlike the embedded file (encrypted whole), these tables can be read by anyone with access to
 * the database (its administrators, its backups, a replica), so:
 * - every record (a user with their password hash, TOTP secret and recovery codes; a client's
 *   metadata; an OAuth payload) is sealed with AES-256-GCM under `key`, the ciphertext naming the
 *   key version (`sealVersioned`), and with associated data binding it to its table and to every
 *   column of its row the store looks it up by (and its expiry): a ciphertext copied to another
 *   row, or a row relabelled with another username, uid, grant or expiry, does not open. Such a
 *   row is an UnreadableAuthRecordError, never "absent": tampering or a missing key is loud.
 *   (`consumed` is not bound: it changes without re-sealing.)
 * - usernames, session uids, device user codes and grant ids are kept only as keyed HMACs
 *   (`lookupKey`): still found by equality, but a reader of the tables learns neither who has an
 *   account (a patient's username is often their e-mail) nor a short user code, and cannot test
 *   guesses without the key. User ids, client ids and model names stay in clear: opaque, not
 *   secret, and what audit records name.
 *
 * Times are this node's clock in epoch seconds, as the embedded store's, so a record's expiry is
 * sealed with it; nodes are expected to keep NTP time (a skew of seconds only moves expiries by as much).
 */
export class PgAuthStore implements AuthStore {
  private readonly db: Database;
  private readonly key: DataKey;
  private readonly keyByVersion: (version: number) => DataKey | undefined;
  private readonly lookupKey: Buffer;
  private readonly ownsDb: boolean;
  /** Models whose writes are announced to the other nodes (see watch). */
  private readonly notified = new Set<string>();
  private readonly channel: string;
  private lastSweep = 0;
  private readonly lockHolders: Slots;

  private constructor(options: PgAuthStoreOptions) {
    if (options.key.key.length !== 32) throw new Error('PgAuthStore: the sealing key must be 32 bytes (AES-256)');
    if (options.lookupKey.length < 32) throw new Error('PgAuthStore: the lookup key must be at least 32 bytes');
    this.db = options.db;
    this.key = options.key;
    this.keyByVersion = options.keyByVersion ?? (() => undefined);
    this.lookupKey = options.lookupKey;
    this.ownsDb = options.ownsDb ?? false;
    this.channel = `bastion_auth_${options.db.schema}`;
    this.lockHolders = new Slots(Math.max(1, (options.db.pool.options.max ?? 10) - 1));
  }

  /** Creates the schema and brings the `auth` tables up to date, then returns the store. */
  static async open(options: PgAuthStoreOptions): Promise<PgAuthStore> {
    const store = new PgAuthStore(options);
    await ensureSchema(options.db);
    await migrate(options.db, 'auth', authSteps);
    return store;
  }

  async addUser(user: UserRecord): Promise<void> {
    const mac = this.mac('username', user.username);
    try {
      await this.db.query('INSERT INTO auth_users (id, username_mac, record) VALUES (?, ?, ?)', [user.id, mac, this.seal(JSON.stringify(user), userAad(user.id, mac))]);
    } catch (err) {
      if (pgCode(err) === pgCodes.uniqueViolation) throw new DuplicateError(`A user named '${user.username}' already exists`);
      throw err;
    }
  }

  async updateUser(user: UserRecord): Promise<void> {
    const mac = this.mac('username', user.username);
    try {
      await this.db.query('UPDATE auth_users SET username_mac = ?, record = ? WHERE id = ?', [mac, this.seal(JSON.stringify(user), userAad(user.id, mac)), user.id]);
    } catch (err) {
      // A rename onto another user's name (the embedded store throws its constraint error here).
      if (pgCode(err) === pgCodes.uniqueViolation) throw new DuplicateError(`A user named '${user.username}' already exists`);
      throw err;
    }
  }

  async userById(id: string): Promise<UserRecord | undefined> {
    return this.openUser((await this.db.query<UserRow>('SELECT id, username_mac, record FROM auth_users WHERE id = ?', [id]))[0]);
  }

  async userByName(username: string): Promise<UserRecord | undefined> {
    return this.openUser((await this.db.query<UserRow>('SELECT id, username_mac, record FROM auth_users WHERE username_mac = ?', [this.mac('username', username)]))[0]);
  }

  async countUsers(): Promise<number> {
    return (await this.db.query<{ n: number }>('SELECT count(*) AS n FROM auth_users'))[0].n;
  }

  async addClient(client: ClientRecord): Promise<void> {
    try {
      await this.db.query('INSERT INTO auth_clients (client_id, record) VALUES (?, ?)', [client.clientId, this.seal(JSON.stringify(client), clientAad(client.clientId))]);
    } catch (err) {
      if (pgCode(err) === pgCodes.uniqueViolation) throw new DuplicateError(`Client '${client.clientId}' already exists`);
      throw err;
    }
  }

  async client(clientId: string): Promise<ClientRecord | undefined> {
    const row = (await this.db.query<{ record: Buffer }>('SELECT record FROM auth_clients WHERE client_id = ?', [clientId]))[0];
    return row ? (JSON.parse(this.open(row.record, clientAad(clientId), `client '${clientId}'`)) as ClientRecord) : undefined;
  }

  async oauthFind(model: string, id: string): Promise<OAuthRecord | undefined> {
    const rows = await this.db.query<OAuthRow>(`SELECT ${oauthColumns} FROM auth_oauth WHERE model = ? AND key = ? AND (expires_at IS NULL OR expires_at >= ?)`, [model, digest(id), nowSeconds()]);
    return rows[0] && this.openOAuth(rows[0]);
  }

  async oauthFindBy(model: string, column: 'uid' | 'user_code', value: string): Promise<OAuthRecord | undefined> {
    // Two fixed statements: the column name never comes from the caller into the SQL.
    const sql = column === 'uid'
      ? `SELECT ${oauthColumns} FROM auth_oauth WHERE model = ? AND uid_mac = ? AND (expires_at IS NULL OR expires_at >= ?) LIMIT 1`
      : `SELECT ${oauthColumns} FROM auth_oauth WHERE model = ? AND user_code_mac = ? AND (expires_at IS NULL OR expires_at >= ?) LIMIT 1`;
    const rows = await this.db.query<OAuthRow>(sql, [model, this.mac(column, value), nowSeconds()]);
    return rows[0] && this.openOAuth(rows[0]);
  }

  async oauthUpsert(model: string, id: string, payload: Record<string, unknown>, expiresIn: number | undefined): Promise<void> {
    const now = nowSeconds();
    const key = digest(id);
    const grantMac = this.macOf('grant_id', payload.grantId);
    const uidMac = this.macOf('uid', payload.uid);
    const userCodeMac = this.macOf('user_code', payload.userCode);
    // Whole seconds, as the column (oidc-provider passes whole seconds anyway).
    const expiresAt = expiresIn === undefined ? null : Math.floor(now + expiresIn);
    const sealed = this.seal(JSON.stringify(payload), oauthAad(model, key, grantMac, uidMac, userCodeMac, expiresAt));
    await this.db.query(
      `INSERT INTO auth_oauth (model, key, payload, grant_mac, uid_mac, user_code_mac, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (model, key) DO UPDATE SET payload = excluded.payload, grant_mac = excluded.grant_mac, uid_mac = excluded.uid_mac,
       user_code_mac = excluded.user_code_mac, expires_at = excluded.expires_at, consumed = NULL`,
      [model, key, sealed, grantMac, uidMac, userCodeMac, expiresAt],
    );
    if (this.notified.has(model)) await this.db.query('SELECT pg_notify(?, ?)', [this.channel, model]);
    await this.sweep(now);
  }

  /**
   * One statement, so atomic across nodes: of two concurrent consumes the second waits on the row
   * lock, re-reads the row the first committed, finds `consumed` set and updates nothing.
   * (As in the embedded store, expiry is not looked at here: callers find the record first.)
   */
  async oauthConsume(model: string, id: string): Promise<boolean> {
    const rows = await this.db.query('UPDATE auth_oauth SET consumed = ? WHERE model = ? AND key = ? AND consumed IS NULL RETURNING 1 AS done', [nowSeconds(), model, digest(id)]);
    return rows.length === 1;
  }

  /**
   * Through LISTEN/NOTIFY: from the first watch on, this node's writes of the watched models notify
   * (every node watches the same ones, as they run the same code), and each node hears the others'.
   */
  async watch(models: readonly string[], onChange: (model: string) => void): Promise<() => Promise<void>> {
    for (const m of models) this.notified.add(m);
    const watched = new Set(models);
    const stop = await listen(this.db, this.channel, {
      heard: (payload) => {
        if (watched.has(payload)) onChange(payload);
      },
      // Whatever was written while deaf is read again.
      back: () => models.forEach(onChange),
    });
    // What was written before this listened (while the caller read what it holds) is read again.
    models.forEach(onChange);
    return stop;
  }

  /**
   * A session-level advisory lock on a pooled connection, held while `work` runs on others. Fewer
   * locks at once than the pool has connections: were every connection holding a lock, the work
   * each waits for would find none, and sign-ins would hang for good.
   */
  async exclusively<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.lockHolders.run(() => this.db.withClient(async (client) => {
      // Keyed by the MAC, as the lookups are: the lock table never shows the username.
      const lock = this.mac('lock', key);
      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lock]);
      try {
        return await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lock]);
      }
    }));
  }

  async oauthDestroy(model: string, id: string): Promise<void> {
    await this.db.query('DELETE FROM auth_oauth WHERE model = ? AND key = ?', [model, digest(id)]);
  }

  async oauthRevokeByGrantId(grantId: string): Promise<void> {
    await this.db.query('DELETE FROM auth_oauth WHERE grant_mac = ?', [this.mac('grant_id', grantId)]);
  }

  async oauthList(model: string): Promise<OAuthRecord[]> {
    const rows = await this.db.query<OAuthRow>(`SELECT ${oauthColumns} FROM auth_oauth WHERE model = ? AND (expires_at IS NULL OR expires_at >= ?)`, [model, nowSeconds()]);
    return rows.map((row) => this.openOAuth(row));
  }

  /**
   * `bastion migrate`: protocol records as another store keeps them, each sealed and MACed here as
   * oauthUpsert would have. `key` is already the SHA-256 digest of the record's id (both stores key
   * by it, so the id, a bearer secret, is never needed), `expiresAt` an absolute time and `consumed`
   * kept. Many rows per statement; a record already here (same model and key) is an error.
   */
  async importOAuth(records: readonly ImportedOAuthRecord[]): Promise<void> {
    const perStatement = 200;
    for (let i = 0; i < records.length; i += perStatement) {
      const batch = records.slice(i, i + perStatement);
      const args: (string | number | Buffer | null)[] = [];
      for (const r of batch) {
        const grantMac = this.macOf('grant_id', r.grantId);
        const uidMac = this.macOf('uid', r.uid);
        const userCodeMac = this.macOf('user_code', r.userCode);
        const sealed = this.seal(r.payload, oauthAad(r.model, r.key, grantMac, uidMac, userCodeMac, r.expiresAt));
        args.push(r.model, r.key, sealed, grantMac, uidMac, userCodeMac, r.expiresAt, r.consumed);
      }
      await this.db.query(`INSERT INTO auth_oauth (${oauthColumns}) VALUES ${batch.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`, args);
    }
  }

  /** The store holds no connection and no timer of its own: the pool is ended only when it is the store's own. */
  async close(): Promise<void> {
    if (this.ownsDb) await this.db.close();
  }

  /** Expired records go at most once a minute, in the writer's stride (each node sweeps; the deletes are idempotent). */
  private async sweep(now: number): Promise<void> {
    if (now - this.lastSweep < 60) return;
    this.lastSweep = now;
    await this.db.query('DELETE FROM auth_oauth WHERE expires_at IS NOT NULL AND expires_at < ?', [now]);
  }

  private openUser(row: UserRow | undefined): UserRecord | undefined {
    if (!row) return undefined;
    return JSON.parse(this.open(row.record, userAad(row.id, row.username_mac), `user '${row.id}'`)) as UserRecord;
  }

  private openOAuth(row: OAuthRow): OAuthRecord {
    const aad = oauthAad(row.model, row.key, row.grant_mac, row.uid_mac, row.user_code_mac, row.expires_at);
    const payload = JSON.parse(this.open(row.payload, aad, `${row.model} record`)) as Record<string, unknown>;
    return { payload, ...(row.expires_at !== null ? { expiresAt: row.expires_at } : {}), ...(row.consumed !== null ? { consumed: row.consumed } : {}) };
  }

  private seal(text: string, aad: Buffer): Buffer {
    return sealVersioned(this.key.key, this.key.version, Buffer.from(text, 'utf8'), aad);
  }

  private open(sealed: Buffer, aad: Buffer, what: string): string {
    const version = sealedVersion(sealed);
    if (version === undefined) throw new UnreadableAuthRecordError(`The stored ${what} is not a Bastion ciphertext`);
    const key = version === this.key.version ? this.key : this.keyByVersion(version);
    if (!key) throw new UnreadableAuthRecordError(`The stored ${what} is sealed under auth key version ${version}, which this node does not have (unknown, or retired)`);
    try {
      return openVersioned(key.key, sealed, aad).toString('utf8');
    } catch {
      throw new UnreadableAuthRecordError(`The stored ${what} does not decrypt: it was altered, or moved from another row`);
    }
  }

  private mac(column: 'username' | 'uid' | 'user_code' | 'grant_id' | 'lock', value: string): string {
    return createHmac('sha256', this.lookupKey).update(`bastion-auth:${column}:`).update(value, 'utf8').digest('base64url');
  }

  private macOf(column: 'uid' | 'user_code' | 'grant_id', value: unknown): string | null {
    return typeof value === 'string' ? this.mac(column, value) : null;
  }
}

/** At most `n` at once; the others wait their turn, in order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(n: number) {
    this.free = n;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      // Handed to the next in line, or freed.
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** Associated data: the table and the row's key columns, JSON-encoded so no two rows can share it. */
const userAad = (id: string, usernameMac: string) => Buffer.from(JSON.stringify(['bastion-auth', 'auth_users', id, usernameMac]));
const clientAad = (clientId: string) => Buffer.from(JSON.stringify(['bastion-auth', 'auth_clients', clientId]));
const oauthAad = (model: string, key: string, grantMac: string | null, uidMac: string | null, userCodeMac: string | null, expiresAt: number | null) =>
  Buffer.from(JSON.stringify(['bastion-auth', 'auth_oauth', model, key, grantMac, uidMac, userCodeMac, expiresAt]));

/** As the embedded store: the same digest, so a migration can carry keys over as they are. */
function digest(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
