import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import { displayDatabaseUrl, loadConfig } from '../config/config.ts';
import { auditSigningKey, openAuthStore, openKeys, openStore, storeFileKey } from '../main.ts';
import type { DataKeys } from '../crypto/data-keys.ts';
import { masterKeySource, type KeyProviderSettings } from '../crypto/open-keys.ts';
import { ResourceCodec } from '../store/resource-codec.ts';
import type { ClientRecord, UserRecord } from '../store/auth-store.ts';
import { openEncrypted, type Db } from '../store/sqlite/open.ts';
import { appendChained, checkpoints as sqliteCheckpoints, purges as sqlitePurges } from '../store/sqlite/audit-schema.ts';
import { Database, schemaName } from '../store/postgres/database.ts';
import { PgStore } from '../store/postgres/pg-store.ts';
import { PgAuthStore, type ImportedOAuthRecord } from '../store/postgres/auth-store.ts';
import type { PgChainRow } from '../store/postgres/audit-log.ts';
import {
  digestChunk, dropImported, finishMigration, importAudit, importAuth, importResources, inspectSchema, markUnfinished, storeFacts, versionDigests,
  type ImportAuditRecord, type ImportProgress, type ImportResource, type ImportSource, type ImportVersion, type StoreFacts,
} from '../store/postgres/import.ts';
import { verifyChain, type ChainAnchor } from '../audit/audit-chain.ts';
import { signCheckpoint, verifiedCheckpoint } from '../audit/checkpoints.ts';
import { anchorOf } from '../audit/retention.ts';
import { authEventFacts, consoleActor } from '../auth/auth-events.ts';
import { parse, UsageError } from './args.ts';
import { assertNotInUse } from './exclusive.ts';

export const migrateHelp = `Usage: bastion migrate --to <postgres URL> [--schema <name>] [options]

Moves this embedded deployment to PostgreSQL, then checks the copy: every resource with its whole
history (each version's number, time, method and deletion marker; bodies sealed under the
resource-body key, sensitive identifiers encrypted), the search index of the current versions,
users, clients and the authorization server's live records (sessions, grants, refresh tokens,
revocations, break-the-glass grants), and the audit trail record by record with its signed
checkpoints (and purges: a trail purged after retention goes on from its last purge).

Checked after the copy: resources and versions per type, search index rows and security labels,
every version decrypted and compared with what the embedded store serves, users and clients read
back, and the audit chain compared link by link and verified. Any failure drops everything the
migration made in PostgreSQL (the schema, when it made it) and exits 1. On success the migration is
recorded on both audit trails, and a checkpoint of the PostgreSQL trail is signed.

The embedded server must be stopped (and stays locked out while this runs). The target schema must
be new or empty: a migration never merges into or overwrites a database. The keys stay in the data
dir: the PostgreSQL deployment uses the same key files (give every node a copy). The embedded
files are left as they were, but for the migration's audit records.

The password: in the URL, or (better: a command line is visible to other users) in PGPASSWORD.
It is never printed.

Options:
  --to <url>           postgres://user[:password]@host[:port]/database[?sslmode=...]
  --schema <name>      the schema to create the tables in (BASTION_DATABASE_SCHEMA; default public)
  --data-dir <dir>     data directory (BASTION_DATA_DIR; default ./data)
  --config <file>      JSON config file (BASTION_CONFIG), for keyProvider and sensitiveIdentifiers
  -q, --quiet          no progress lines
  -h, --help           this help
`;

export class MigrateError extends Error {}

export interface MigrateOptions {
  dataDir: string;
  /** The PostgreSQL URL (its password is never printed). */
  url: string;
  schema: string;
  keyProvider: KeyProviderSettings;
  /** As the embedded server runs (to open its store), and as the PostgreSQL nodes will. */
  sensitiveIdentifiers: readonly string[];
  encryptResourceBodies: boolean;
  /** A progress line (phases, and every few thousand versions or records). */
  progress?: (line: string) => void;
  /** Stops the migration at the next page read (Ctrl-C): it fails, and what it made is dropped. */
  signal?: AbortSignal;
}

export interface MigrateSummary {
  dataDir: string;
  /** The URL without its password. */
  target: string;
  schema: string;
  createdSchema: boolean;
  seconds: number;
  resources: number;
  versions: number;
  types: StoreFacts['types'];
  indexRows: number;
  users: number;
  clients: number;
  oauth: number;
  audit: { records: number; last: number; checkpoints: number; purges: number; head: string; recordedAt: number };
  /** AuditEvents clients stored as resources before the trail was its own (kept in the embedded file, not migrated). */
  quarantined: number;
}

export async function migrateCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { to: { type: 'string' }, schema: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } });
  if (values.help) {
    process.stdout.write(migrateHelp);
    return;
  }
  if (typeof values.to !== 'string' || values.to === '') throw new UsageError('migrate needs --to <postgres URL> (its password in the URL or in PGPASSWORD)');
  const url = checkedUrl(values.to);
  const schema = (values.schema as string | undefined) ?? process.env.BASTION_DATABASE_SCHEMA ?? 'public';
  if (!schemaName.test(schema)) throw new UsageError(`--schema must be a plain lower-case SQL name of at most 50 characters (got "${schema}")`);
  const config = loadConfig({ dataDir: values['data-dir'] as string | undefined }, process.env, values.config as string | undefined);
  const quiet = values.quiet === true;
  // Ctrl-C stops it cleanly (what was made in PostgreSQL is dropped); a second one quits at once.
  const abort = new AbortController();
  const stop = () => {
    process.stderr.write('interrupted: stopping, and dropping what was made in PostgreSQL (again to quit at once)\n');
    abort.abort(new MigrateError('interrupted'));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const summary = await migrateDataDir({
      dataDir: config.dataDir, url, schema, keyProvider: config.keyProvider, sensitiveIdentifiers: config.sensitiveIdentifiers,
      encryptResourceBodies: config.encryptResourceBodies, signal: abort.signal,
      progress: quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(formatMigrateSummary(summary));
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function checkedUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError('--to must be a postgres:// URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new UsageError(`--to must be a postgres:// URL (got ${url.protocol}//...)`);
  if (!url.hostname) throw new UsageError('--to needs a host');
  return text;
}

/** The URL as it may be shown: no password (nor a `password` parameter). */
export const displayUrl = displayDatabaseUrl;

/** A message with the URL's password taken out, should a library ever repeat it. */
function redacted(message: string, url: string): string {
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    // not a URL: nothing to take out
  }
  let out = message.split(url).join(displayUrl(url));
  if (password.length > 0) out = out.split(password).join('***');
  return out;
}

/** Does the migration: see migrateHelp. Throws MigrateError (nothing left in PostgreSQL) on any failure. */
export async function migrateDataDir(options: MigrateOptions): Promise<MigrateSummary> {
  const started = performance.now();
  const dataDir = resolve(options.dataDir);
  const say = options.progress ?? (() => undefined);
  const target = displayUrl(options.url);
  if (!existsSync(join(dataDir, 'bastion.db'))) throw new MigrateError(`no embedded Bastion store in ${dataDir} (bastion.db)`);
  // The local keyring would make a new (wrong) master.key where there is none.
  if (options.keyProvider.kind === 'local' && masterKeySource(dataDir, process.env).kind === 'file' && !existsSync(join(dataDir, 'master.key'))) {
    throw new MigrateError(`no master key for ${dataDir}: set BASTION_MASTER_KEY or BASTION_MASTER_PASSPHRASE as for its server`);
  }
  const keys = await openKeys(dataDir, options.keyProvider);
  try {
    assertNotInUse(dataDir, keys);
    // Brought to this Bastion's schema first, as a start of the server would (an older file is upgraded, its index rebuilt).
    const settings = { encryptResourceBodies: options.encryptResourceBodies, sensitiveIdentifiers: [...options.sensitiveIdentifiers] };
    await (await openStore(dataDir, keys, settings)).close();
    if (existsSync(join(dataDir, 'bastion-auth.db'))) await (await openAuthStore({ dataDir }, keys)).close();

    // Held until the end: no server (nor console command) can write the files meanwhile.
    const source = EmbeddedSource.open(dataDir, keys, options.signal);
    try {
      return await migrateLocked(options, dataDir, keys, source, target, started, say);
    } finally {
      source.close();
    }
  } finally {
    await keys.provider.close?.();
  }
}

async function migrateLocked(options: MigrateOptions, dataDir: string, keys: DataKeys, source: EmbeddedSource, target: string, started: number, say: (line: string) => void): Promise<MigrateSummary> {
  const { url, schema } = options;
  const pgError = (err: unknown) => new MigrateError(`PostgreSQL (${target}): ${redacted((err as Error).message, url)}`);
  const admin = new Database({ url, schema, max: 2 });
  let lock: pg.PoolClient | undefined;
  try {
    // One migration into a schema at a time (a second would find the first's tables half made).
    try {
      lock = await admin.pool.connect();
      const [{ ok }] = (await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [`bastion-migrate-to:${schema}`])).rows;
      if (!ok) throw new MigrateError(`another bastion migrate into schema "${schema}" is running`);
    } catch (err) {
      if (err instanceof MigrateError) throw err;
      throw pgError(err);
    }
    let state;
    try {
      state = await inspectSchema(admin);
    } catch (err) {
      throw pgError(err);
    }
    if (state.unfinished !== undefined) {
      throw new MigrateError(`schema "${schema}" holds an unfinished migration (${state.unfinished}); nothing in it is complete: drop it (DROP SCHEMA ${schema} CASCADE) and migrate again, or name a new schema with --schema`);
    }
    if (state.bastion) throw new MigrateError(`schema "${schema}" already holds Bastion data: a migration never merges into or overwrites a database; name a new schema with --schema`);
    if (state.objects > 0) throw new MigrateError(`schema "${schema}" is not empty (${state.objects} objects): name a new (or empty) schema with --schema`);
    const createdSchema = !state.exists;

    // From here PHI leaves the embedded store: the attempt is on its trail, whatever follows (and so in the copy).
    const detail = `to=${target} schema=${schema}`;
    source.record(true, `phase=started ${detail}`);
    try {
      const summary = await copyAndVerify(options, dataDir, keys, source, target, createdSchema, say);
      source.record(true, `phase=done ${detail} resources=${summary.resources} versions=${summary.versions} users=${summary.users} clients=${summary.clients} audit-records=${summary.audit.records} audit-head=${summary.audit.head}`);
      return { ...summary, seconds: (performance.now() - started) / 1000 };
    } catch (err) {
      let cleanup = createdSchema ? `schema "${schema}" dropped` : `everything made in schema "${schema}" dropped`;
      try {
        await dropImported(admin, createdSchema);
      } catch (dropErr) {
        cleanup = `and what it made in schema "${schema}" could not be dropped (${redacted((dropErr as Error).message, url)}): drop it by hand before migrating again`;
      }
      const reason = err instanceof MigrateError ? err.message : redacted((err as Error).message, url);
      try {
        source.record(false, `phase=failed ${detail} error=${(err as Error).name}`);
      } catch {
        // The failure itself is what the operator must hear.
      }
      throw new MigrateError(`migration failed, ${cleanup}: ${reason}`);
    }
  } finally {
    if (lock) {
      await lock.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      lock.release();
    }
    await admin.close().catch(() => undefined);
  }
}

async function copyAndVerify(options: MigrateOptions, dataDir: string, keys: DataKeys, source: EmbeddedSource, target: string, createdSchema: boolean, say: (line: string) => void): Promise<Omit<MigrateSummary, 'seconds'>> {
  const { url, schema } = options;
  const concurrency = 4;
  // The embedded store's bodies are read whatever they are (text, sealed, identifiers encrypted or not);
  // PostgreSQL's are written as its nodes write them: sealed, the configured identifiers encrypted.
  const from = new ResourceCodec(keys, { sensitiveIdentifiers: [...options.sensitiveIdentifiers] });
  const to = new ResourceCodec(keys, { encryptBodies: true, sensitiveIdentifiers: [...options.sensitiveIdentifiers] });
  const totals = source.totals();
  const report = progressReporter(say);
  say(`migrating ${dataDir} to ${target}, schema ${schema}: ${n(totals.resources)} resources, ${n(totals.versions)} versions, ${n(totals.audit)} audit records`);

  const store = await PgStore.open({ url, schema, max: concurrency + 2, codec: to });
  let auth: PgAuthStore | undefined;
  try {
    const opened = await openAuthStore({ dataDir, database: { url, schema, poolSize: 8 } }, keys);
    if (!(opened instanceof PgAuthStore)) throw new Error('the target auth store is not PostgreSQL');
    auth = opened;
    await markUnfinished(store.db, `started ${new Date().toISOString()} from ${dataDir}`);

    // 1. Copy.
    const resources = await importResources(store.db, source, totals, { from, to, concurrency, onProgress: report });
    say(`resources copied: ${n(resources.resources)} resources, ${n(resources.versions)} versions, ${n(resources.indexed)} current versions indexed`);
    const audit = await importAudit(store.db, store.auditLog, source, totals.audit, report);
    say(`audit trail copied: ${n(audit.records)} records, ${n(audit.checkpoints)} checkpoints, ${n(audit.purges)} purges`);
    const copiedAt = Math.floor(Date.now() / 1000);
    const authCopied = await importAuth(auth, source, copiedAt);
    say(`auth copied: ${n(authCopied.users)} users, ${n(authCopied.clients)} clients, ${n(authCopied.oauth)} protocol records`);

    // 2. Verify.
    say('checking: counts, search index, security labels');
    const expected = await storeFacts(<T>(sql: string, args: number[] = []) => Promise.resolve(source.store.prepare(sql).all(...args) as T[]));
    const found = await storeFacts(<T>(sql: string, args: number[] = []) => store.db.query<T & Record<string, unknown>>(sql, args) as Promise<T[]>);
    compareFacts(expected, found);
    const stored = await versionDigests(store.db, new ResourceCodec(keys, { encryptBodies: true, sensitiveIdentifiers: [...options.sensitiveIdentifiers] }), resources.versions, report);
    compareDigests(resources.digests, stored);
    const publicKey = await auditSigningKey(dataDir, 'public', keys);
    const head = await compareAudit(source, store, publicKey, audit.records, report);
    await compareAuth(source, auth, store.db, authCopied.oauth);

    // 3. Recorded on the PostgreSQL trail (after the copied records, so the copy is what was checked), then signed.
    const at = new Date().toISOString();
    const facts = authEventFacts({
      ...consoleActor, kind: 'migrated', success: true,
      detail: `phase=verified from=embedded:${dataDir} to=${target} schema=${schema} resources=${resources.resources} versions=${resources.versions} users=${authCopied.users} clients=${authCopied.clients} audit-records=${audit.records} audit-head=${head.toString('hex')}`,
    }, at);
    const recordedAt = await store.auditLog.append([{ recorded: at, json: JSON.stringify(facts) }]);
    const signed = await signCheckpoint(await store.auditLog.head(), at, await auditSigningKey(dataDir, 'private', keys));
    await store.auditLog.appendCheckpoint(signed.stored);
    await finishMigration(store.db);

    const indexRows = Object.values(expected.index).reduce((a, b) => a + b, 0);
    return {
      dataDir, target, schema, createdSchema, resources: resources.resources, versions: resources.versions, types: found.types, indexRows,
      users: authCopied.users, clients: authCopied.clients, oauth: authCopied.oauth,
      audit: { records: audit.records, last: audit.last, checkpoints: audit.checkpoints, purges: audit.purges, head: head.toString('hex'), recordedAt },
      quarantined: source.quarantined(),
    };
  } finally {
    await auth?.close();
    await store.close();
  }
}

function compareFacts(expected: StoreFacts, found: StoreFacts): void {
  const types = new Set([...Object.keys(expected.types), ...Object.keys(found.types)]);
  for (const type of [...types].sort()) {
    const a = expected.types[type] ?? { resources: 0, live: 0, versions: 0 };
    const b = found.types[type] ?? { resources: 0, live: 0, versions: 0 };
    if (!isDeepStrictEqual(a, b)) {
      throw new MigrateError(`${type}: the embedded store holds ${a.resources} resources (${a.live} live) and ${a.versions} versions; PostgreSQL ${b.resources} (${b.live} live) and ${b.versions}`);
    }
  }
  if (expected.resourceRows !== found.resourceRows) throw new MigrateError('the resources rows (ids, current versions, times) differ from the embedded store\'s');
  for (const table of Object.keys(expected.index)) {
    if (expected.index[table] !== found.index[table]) {
      throw new MigrateError(`the search index table ${table} holds ${found.index[table]} rows; the embedded store's ${expected.index[table]} (if the embedded index is stale, run bastion reindex on it and migrate again)`);
    }
  }
  if (!isDeepStrictEqual(expected.security, found.security)) {
    const rid = [...new Set([...Object.keys(expected.security), ...Object.keys(found.security)])].find((r) => expected.security[r] !== found.security[r]);
    throw new MigrateError(`the security label bits of resource row ${rid} differ (${expected.security[rid!] ?? 0} embedded, ${found.security[rid!] ?? 0} PostgreSQL)`);
  }
}

function compareDigests(copied: string[], stored: string[]): void {
  const i = copied.findIndex((d, k) => stored[k] !== d);
  if (i >= 0 || stored.length !== copied.length) {
    const k = i >= 0 ? i : Math.min(copied.length, stored.length);
    throw new MigrateError(`the stored versions ${k * digestChunk + 1}..${(k + 1) * digestChunk} (in seq order) do not read back as the embedded store serves them`);
  }
}

/**
 * The PostgreSQL trail against the embedded one, record by record (position, time, event and
 * link identical), verified by the chain's verifier page by page from the purge anchor (whose
 * signature is checked), then its purges and signed checkpoints. Returns the head.
 */
async function compareAudit(source: EmbeddedSource, store: PgStore, publicKey: Parameters<typeof verifiedCheckpoint>[1], total: number, report: (p: ImportProgress) => void): Promise<Buffer> {
  const log = store.auditLog;
  let anchor: ChainAnchor | undefined;
  try {
    anchor = await anchorOf(source.audit, publicKey);
  } catch (err) {
    throw new MigrateError(`the embedded audit trail's purges do not verify: ${(err as Error).message}`);
  }
  const sourcePurges = sqlitePurges(source.audit);
  const targetPurges = await log.purges();
  if (!isDeepStrictEqual(sourcePurges.map(plain), targetPurges.map(plain))) throw new MigrateError('the audit purges differ from the embedded trail\'s');

  let head: Buffer = anchor?.head ?? Buffer.alloc(32);
  let from = anchor;
  let page: PgChainRow[] = [];
  let sourceRows: ImportAuditRecord[] = [];
  let at = 0;
  let after = anchor?.seq ?? 0;
  let done = 0;
  const check = () => {
    if (page.length === 0) return;
    const verdict = verifyChain(page, from);
    if (!verdict.ok) throw new MigrateError(`the PostgreSQL audit chain does not verify at record ${verdict.seq} (${verdict.problem}: ${verdict.detail})`);
    const last = page[page.length - 1];
    from = { seq: last.seq, head: last.hash! };
    head = last.hash!;
    done += page.length;
    report({ phase: 'check audit', done, total });
    page = [];
  };
  for await (const row of log.chainRows()) {
    if (at >= sourceRows.length) {
      sourceRows = source.auditRecords(after, 5000);
      at = 0;
      if (sourceRows.length === 0) throw new MigrateError(`the PostgreSQL audit trail holds record ${row.seq}, which the embedded trail does not`);
    }
    const s = sourceRows[at++];
    after = s.seq;
    if (row.seq !== s.seq || row.recorded !== s.recorded || row.event !== s.event || !row.hash || !s.hash || !row.hash.equals(s.hash)) {
      const what = row.seq !== s.seq ? 'position' : row.recorded !== s.recorded ? 'time' : row.event !== s.event ? 'event' : 'link';
      throw new MigrateError(`audit record ${s.seq}: its ${what} differs between the embedded trail and PostgreSQL`);
    }
    page.push(row);
    if (page.length === 2000) check();
  }
  check();
  const rest = source.auditRecords(after, 1);
  if (rest.length > 0) throw new MigrateError(`the PostgreSQL audit trail ends before record ${rest[0].seq} of the embedded trail`);
  const [pgHead] = await store.db.query<{ count: number; head: Buffer }>('SELECT count, head FROM audit_head');
  if (pgHead.count !== after || !pgHead.head.equals(head)) throw new MigrateError('the PostgreSQL audit head is not the last record copied');

  const sourceCheckpoints = sqliteCheckpoints(source.audit);
  const targetCheckpoints = await log.checkpoints();
  if (!isDeepStrictEqual(sourceCheckpoints.map(plain), targetCheckpoints.map(plain))) throw new MigrateError('the signed audit checkpoints differ from the embedded trail\'s');
  for (const c of targetCheckpoints) {
    const signed = await verifiedCheckpoint(c.jws, publicKey);
    if (!signed || signed.count !== c.count || signed.head !== c.head.toString('hex')) throw new MigrateError(`the audit checkpoint of ${c.at} is not signed by the audit key`);
    if (anchor && signed.count <= anchor.seq) continue;
    const link = await log.linkAt(signed.count);
    if (!link || link.toString('hex') !== signed.head) throw new MigrateError(`the PostgreSQL audit chain up to record ${signed.count} is not the one signed at ${signed.at}`);
  }
  return head;
}

/** A row as plain comparable values (bytes as hex). */
function plain(row: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : v]));
}

/** Every user and client read back through the PostgreSQL auth store (so unsealed with the keys the nodes will use) as they were. */
async function compareAuth(source: EmbeddedSource, auth: PgAuthStore, db: Database, copiedOAuth: number): Promise<void> {
  const users = source.users();
  if ((await auth.countUsers()) !== users.length) throw new MigrateError(`PostgreSQL holds ${await auth.countUsers()} users; the embedded store ${users.length}`);
  for (const u of users) {
    if (!isDeepStrictEqual(await auth.userByName(u.username), u)) throw new MigrateError(`user ${u.id} does not read back by name as it was`);
  }
  const clients = source.clients();
  const [{ n: clientCount }] = await db.query<{ n: number }>('SELECT count(*) AS n FROM auth_clients');
  if (clientCount !== clients.length) throw new MigrateError(`PostgreSQL holds ${clientCount} clients; the embedded store ${clients.length}`);
  for (const c of clients) {
    if (!isDeepStrictEqual(await auth.client(c.clientId), c)) throw new MigrateError(`client ${c.clientId} does not read back as it was`);
  }
  const [{ n: oauthCount }] = await db.query<{ n: number }>('SELECT count(*) AS n FROM auth_oauth');
  if (oauthCount !== copiedOAuth) throw new MigrateError(`PostgreSQL holds ${oauthCount} protocol records; ${copiedOAuth} were copied`);
  // Each live one opens (its seal and MACs are right) and holds what it held.
  const now = Math.floor(Date.now() / 1000) + 1;
  const expected = new Map<string, string[]>();
  for (const r of source.oauth(now)) {
    const list = expected.get(r.model) ?? [];
    list.push(JSON.stringify([JSON.parse(r.payload), r.expiresAt, r.consumed]));
    expected.set(r.model, list);
  }
  for (const [model, list] of expected) {
    const got = (await auth.oauthList(model)).filter((r) => r.expiresAt === undefined || r.expiresAt >= now)
      .map((r) => JSON.stringify([r.payload, r.expiresAt ?? null, r.consumed ?? null]));
    if (!isDeepStrictEqual(got.sort(), list.sort())) throw new MigrateError(`the ${model} records do not read back as they were`);
  }
}

/**
 * The embedded data dir's three files, each opened with an exclusive lock held until close():
 * a server (or console command) started meanwhile cannot open them, so nothing is written that
 * the copy would miss.
 */
class EmbeddedSource implements ImportSource {
  readonly store: Db;
  readonly audit: Db;
  readonly auth: Db | undefined;
  private readonly signal: AbortSignal | undefined;

  private constructor(store: Db, audit: Db, auth: Db | undefined, signal: AbortSignal | undefined) {
    this.store = store;
    this.audit = audit;
    this.auth = auth;
    this.signal = signal;
  }

  static open(dataDir: string, keys: DataKeys, signal?: AbortSignal): EmbeddedSource {
    const opened: Db[] = [];
    try {
      const store = exclusive(dataDir, keys, 'bastion.db');
      opened.push(store);
      const audit = exclusive(dataDir, keys, 'bastion-audit.db');
      opened.push(audit);
      const auth = existsSync(join(dataDir, 'bastion-auth.db')) ? exclusive(dataDir, keys, 'bastion-auth.db') : undefined;
      return new EmbeddedSource(store, audit, auth, signal);
    } catch (err) {
      for (const db of opened) db.close();
      throw err;
    }
  }

  totals(): { resources: number; versions: number; audit: number } {
    const count = (db: Db, sql: string) => db.prepare(sql).pluck().get() as number;
    return { resources: count(this.store, 'SELECT count(*) FROM resources'), versions: count(this.store, 'SELECT count(*) FROM resource_versions'), audit: count(this.audit, 'SELECT count(*) FROM audit_log') };
  }

  quarantined(): number {
    const table = this.store.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarantined_audit_events'`).get();
    return table ? (this.store.prepare('SELECT count(*) FROM quarantined_audit_events').pluck().get() as number) : 0;
  }

  resources(afterRid: number, limit: number): ImportResource[] {
    this.signal?.throwIfAborted();
    // (Security label bits are not taken: they are set from each current version's labels as it is indexed, then compared.)
    return this.store.prepare<[number, number], { rid: number; type: string; id: string; version: number; seq: number; last_updated: string; deleted: number }>(
      'SELECT rid, type, id, version, seq, last_updated, deleted FROM resources WHERE rid > ? ORDER BY rid LIMIT ?',
    ).all(afterRid, limit).map((r) => ({ rid: r.rid, type: r.type, id: r.id, version: r.version, seq: r.seq, lastUpdated: r.last_updated, deleted: r.deleted === 1 }));
  }

  versions(afterSeq: number, limit: number): ImportVersion[] {
    this.signal?.throwIfAborted();
    return this.store.prepare<[number, number], { seq: number; rid: number; type: string; id: string; version: number; last_updated: string; method: string; deleted: number; current: number; content: string | Buffer | null }>(
      `SELECT v.seq, v.rid, v.type, r.id, v.version, v.last_updated, v.method, v.deleted, r.seq = v.seq AS current, v.content
       FROM resource_versions v JOIN resources r ON r.rid = v.rid WHERE v.seq > ? ORDER BY v.seq LIMIT ?`,
    ).all(afterSeq, limit).map((r) => ({
      seq: r.seq, rid: r.rid, type: r.type, id: r.id, version: r.version, lastUpdated: r.last_updated, method: r.method, deleted: r.deleted === 1, current: r.current === 1, content: r.content,
    }));
  }

  auditRecords(afterSeq: number, limit: number): ImportAuditRecord[] {
    this.signal?.throwIfAborted();
    return this.audit.prepare<[number, number], ImportAuditRecord>(
      'SELECT l.seq AS seq, l.recorded AS recorded, l.event AS event, c.hash AS hash FROM audit_log l LEFT JOIN audit_chain c ON c.seq = l.seq WHERE l.seq > ? ORDER BY l.seq LIMIT ?',
    ).all(afterSeq, limit);
  }

  auditPurges() {
    return sqlitePurges(this.audit);
  }

  auditCheckpoints() {
    return sqliteCheckpoints(this.audit);
  }

  users(): UserRecord[] {
    if (!this.auth) return [];
    return (this.auth.prepare('SELECT record FROM users ORDER BY id').pluck().all() as string[]).map((r) => JSON.parse(r) as UserRecord);
  }

  clients(): ClientRecord[] {
    if (!this.auth) return [];
    return (this.auth.prepare('SELECT record FROM clients ORDER BY client_id').pluck().all() as string[]).map((r) => JSON.parse(r) as ClientRecord);
  }

  oauth(now: number): ImportedOAuthRecord[] {
    if (!this.auth) return [];
    return this.auth.prepare<[number], { model: string; key: string; payload: string; grant_id: string | null; uid: string | null; user_code: string | null; expires_at: number | null; consumed: number | null }>(
      'SELECT model, key, payload, grant_id, uid, user_code, expires_at, consumed FROM oauth WHERE expires_at IS NULL OR expires_at >= ? ORDER BY model, key',
    ).all(now).map((r) => ({ model: r.model, key: r.key, payload: r.payload, grantId: r.grant_id, uid: r.uid, userCode: r.user_code, expiresAt: r.expires_at, consumed: r.consumed }));
  }

  /** A `migrated` record appended to the embedded trail (the server is stopped: this process holds the file). */
  record(success: boolean, detail: string): void {
    const at = new Date().toISOString();
    const facts = authEventFacts({ ...consoleActor, kind: 'migrated', success, detail }, at);
    appendChained(this.audit, at, JSON.stringify(facts));
  }

  close(): void {
    for (const db of [this.store, this.audit, this.auth]) db?.close();
  }
}

/** A store file opened for this process alone (see assertNotInUse): the lock stays until it is closed. */
function exclusive(dataDir: string, keys: DataKeys, file: 'bastion.db' | 'bastion-audit.db' | 'bastion-auth.db'): Db {
  const db = openEncrypted(join(dataDir, file), storeFileKey(dataDir, keys, file));
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
    return db;
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new MigrateError(`${file} in ${dataDir} is in use by another process (a running bastion serve?): stop it first`);
    throw err;
  }
}

/** A progress line per phase at every `every` rows, and at its end. */
function progressReporter(say: (line: string) => void, every = 10_000): (p: ImportProgress) => void {
  const last = new Map<string, number>();
  return (p) => {
    const before = last.get(p.phase) ?? 0;
    last.set(p.phase, p.done);
    if (p.done === p.total || Math.floor(p.done / every) > Math.floor(before / every)) say(`${p.phase}: ${n(p.done)} of ${n(p.total)}`);
  };
}

const n = (x: number) => x.toLocaleString('en-US');

export function formatMigrateSummary(s: MigrateSummary): string {
  const types = Object.entries(s.types).sort(([a], [b]) => (a < b ? -1 : 1));
  const width = Math.max(4, ...types.map(([t]) => t.length));
  const lines = [
    `migrated ${s.dataDir} to PostgreSQL ${s.target}, schema ${s.schema}${s.createdSchema ? ' (created)' : ''}, in ${s.seconds.toFixed(1)} s`,
    `  store: ${n(s.resources)} resources (${n(s.versions)} versions, every one with its number, time and method), search index rebuilt (${n(s.indexRows)} rows)`,
    ...types.map(([t, c]) => `    ${t.padEnd(width)}  ${n(c.resources).padStart(9)} resources (${n(c.live)} live)  ${n(c.versions).padStart(9)} versions`),
    `  auth: ${n(s.users)} users, ${n(s.clients)} clients, ${n(s.oauth)} live protocol records (sessions, grants, tokens, revocations)`,
    `  audit trail: ${n(s.audit.records)} records${s.audit.purges > 0 ? ` (after ${s.audit.purges} purge${s.audit.purges === 1 ? '' : 's'}: from record ${n(s.audit.last - s.audit.records + 1)})` : ''}, ${n(s.audit.checkpoints)} signed checkpoints; head ${s.audit.head}`,
    '  verified: counts per type, search index rows and security labels, every version read back and identical, users and clients read back, the audit chain identical link by link and intact, its checkpoints signed',
    `  recorded: on the PostgreSQL trail at record ${n(s.audit.recordedAt)} (then a signed checkpoint), and on the embedded trail`,
    ...(s.quarantined > 0 ? [`  not migrated: ${n(s.quarantined)} AuditEvent versions clients stored as resources before the trail was its own (quarantined in bastion.db, served by nothing)`] : []),
    `The keys stay in ${s.dataDir}: the PostgreSQL deployment uses the same key files (data-keys.json, keyring.json, the signing keys); give every node a copy, and the same master key or key provider.`,
    `Start the nodes with BASTION_DATABASE_URL=${s.target} (the password in it, or PGPASSWORD) and BASTION_DATABASE_SCHEMA=${s.schema}. The embedded files are as they were: keep them until PostgreSQL is in service.`,
  ];
  return lines.join('\n') + '\n';
}
