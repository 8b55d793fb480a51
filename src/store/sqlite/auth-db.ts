import { createHash } from 'node:crypto';
import { DuplicateError, type AuthStore, type ClientRecord, type OAuthRecord, type UserRecord } from '../auth-store.ts';
import { migrate } from './migrations.ts';
import { openEncrypted, type Db } from './open.ts';

const authMigrations = [
  // 1: users, clients, and the OAuth core's records.
  `
  CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, record TEXT NOT NULL);
  CREATE TABLE clients (client_id TEXT PRIMARY KEY, record TEXT NOT NULL);
  CREATE TABLE oauth (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    grant_id TEXT,
    uid TEXT,
    user_code TEXT,
    expires_at INTEGER,
    consumed INTEGER,
    PRIMARY KEY (model, key)
  ) WITHOUT ROWID;
  CREATE INDEX oauth_grant ON oauth (grant_id) WHERE grant_id IS NOT NULL;
  CREATE INDEX oauth_uid ON oauth (model, uid) WHERE uid IS NOT NULL;
  CREATE INDEX oauth_expiry ON oauth (expires_at) WHERE expires_at IS NOT NULL;
  `,
];

/**
 * The authorization server's state in its own encrypted file beside the FHIR store
 * (`bastion-auth.db`). Records are keyed by the SHA-256 of their id, and the adapter leaves the
 * id out of records whose id is a bearer secret: the file holds no usable refresh token or
 * authorization code, even decrypted.
 *
 * Commits run with synchronous = NORMAL (WAL): a process crash loses nothing; a power loss may
 * lose the last writes of a moment (say, a consumed code), which a restart after power loss makes
 * moot for codes (10 minutes) and is accepted for the rest. FULL would put a disk flush on the event
 * loop for every token issued.
 */
export class SqliteAuthStore implements AuthStore {
  private readonly db: Db;
  private readonly stmts: ReturnType<typeof prepare>;
  private lastSweep = 0;

  constructor(path: string, key: Buffer) {
    this.db = openEncrypted(path, key, { callerSyncsCommits: true });
    migrate(this.db, authMigrations, 'auth file');
    this.stmts = prepare(this.db);
  }

  async addUser(user: UserRecord): Promise<void> {
    try {
      this.stmts.insertUser.run(user.id, user.username, JSON.stringify(user));
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' || (err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new DuplicateError(`A user named '${user.username}' already exists`);
      }
      throw err;
    }
  }

  async updateUser(user: UserRecord): Promise<void> {
    this.stmts.updateUser.run(user.username, JSON.stringify(user), user.id);
  }

  async userById(id: string): Promise<UserRecord | undefined> {
    return parsed<UserRecord>(this.stmts.userById.get(id));
  }

  async userByName(username: string): Promise<UserRecord | undefined> {
    return parsed<UserRecord>(this.stmts.userByName.get(username));
  }

  async countUsers(): Promise<number> {
    return (this.stmts.countUsers.get() as { n: number }).n;
  }

  async addClient(client: ClientRecord): Promise<void> {
    try {
      this.stmts.insertClient.run(client.clientId, JSON.stringify(client));
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new DuplicateError(`Client '${client.clientId}' already exists`);
      throw err;
    }
  }

  async client(clientId: string): Promise<ClientRecord | undefined> {
    return parsed<ClientRecord>(this.stmts.clientById.get(clientId));
  }

  async oauthFind(model: string, id: string): Promise<OAuthRecord | undefined> {
    return live(this.stmts.find.get(model, digest(id)) as Row | undefined);
  }

  async oauthFindBy(model: string, column: 'uid' | 'user_code', value: string): Promise<OAuthRecord | undefined> {
    const stmt = column === 'uid' ? this.stmts.findByUid : this.stmts.findByUserCode;
    return live(stmt.get(model, value) as Row | undefined);
  }

  async oauthUpsert(model: string, id: string, payload: Record<string, unknown>, expiresIn: number | undefined): Promise<void> {
    const now = nowSeconds();
    const expiresAt = expiresIn === undefined ? null : now + expiresIn;
    this.stmts.upsert.run(model, digest(id), JSON.stringify(payload), str(payload.grantId), str(payload.uid), str(payload.userCode), expiresAt);
    this.sweep(now);
  }

  async oauthConsume(model: string, id: string): Promise<boolean> {
    return this.stmts.consume.run(nowSeconds(), model, digest(id)).changes === 1;
  }

  async oauthDestroy(model: string, id: string): Promise<void> {
    this.stmts.destroy.run(model, digest(id));
  }

  async oauthRevokeByGrantId(grantId: string): Promise<void> {
    this.stmts.revokeGrant.run(grantId);
  }

  async oauthList(model: string): Promise<OAuthRecord[]> {
    return (this.stmts.list.all(model, nowSeconds()) as Row[]).map((row) => live(row)!);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** Expired records go at most once a minute, in the writer's stride. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60) return;
    this.lastSweep = now;
    this.stmts.sweep.run(now);
  }
}


interface Row { payload: string; expires_at: number | null; consumed: number | null }

function prepare(db: Db) {
  return {
    insertUser: db.prepare('INSERT INTO users (id, username, record) VALUES (?, ?, ?)'),
    updateUser: db.prepare('UPDATE users SET username = ?, record = ? WHERE id = ?'),
    userById: db.prepare('SELECT record FROM users WHERE id = ?'),
    userByName: db.prepare('SELECT record FROM users WHERE username = ?'),
    countUsers: db.prepare('SELECT count(*) AS n FROM users'),
    insertClient: db.prepare('INSERT INTO clients (client_id, record) VALUES (?, ?)'),
    clientById: db.prepare('SELECT record FROM clients WHERE client_id = ?'),
    find: db.prepare('SELECT payload, expires_at, consumed FROM oauth WHERE model = ? AND key = ?'),
    findByUid: db.prepare('SELECT payload, expires_at, consumed FROM oauth WHERE model = ? AND uid = ?'),
    findByUserCode: db.prepare('SELECT payload, expires_at, consumed FROM oauth WHERE model = ? AND user_code = ?'),
    upsert: db.prepare(`INSERT INTO oauth (model, key, payload, grant_id, uid, user_code, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (model, key) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
      user_code = excluded.user_code, expires_at = excluded.expires_at, consumed = NULL`),
    consume: db.prepare('UPDATE oauth SET consumed = ? WHERE model = ? AND key = ? AND consumed IS NULL'),
    destroy: db.prepare('DELETE FROM oauth WHERE model = ? AND key = ?'),
    revokeGrant: db.prepare('DELETE FROM oauth WHERE grant_id = ?'),
    list: db.prepare('SELECT payload, expires_at, consumed FROM oauth WHERE model = ? AND (expires_at IS NULL OR expires_at >= ?)'),
    sweep: db.prepare('DELETE FROM oauth WHERE expires_at IS NOT NULL AND expires_at < ?'),
  };
}

function live(row: Row | undefined): OAuthRecord | undefined {
  if (!row) return undefined;
  if (row.expires_at !== null && row.expires_at < nowSeconds()) return undefined;
  return { payload: JSON.parse(row.payload) as Record<string, unknown>, ...(row.expires_at !== null ? { expiresAt: row.expires_at } : {}), ...(row.consumed !== null ? { consumed: row.consumed } : {}) };
}

function parsed<T>(row: unknown): T | undefined {
  return row ? (JSON.parse((row as { record: string }).record) as T) : undefined;
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
