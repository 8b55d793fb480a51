import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { auditSigningKey, openAuthStore, openKeys, openStore, startServer, type Server } from '../../src/main.ts';
import { SqliteAuthStore } from '../../src/store/sqlite/auth-db.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { chainRows as sqliteChainRows, checkpoints as sqliteCheckpoints } from '../../src/store/sqlite/audit-schema.ts';
import { PgStore } from '../../src/store/postgres/pg-store.ts';
import { Database } from '../../src/store/postgres/database.ts';
import type { PgChainRow } from '../../src/store/postgres/audit-log.ts';
import { verifyChain } from '../../src/audit/audit-chain.ts';
import { verifiedCheckpoint } from '../../src/audit/checkpoints.ts';
import { purgeAuditTrail } from '../../src/audit/retention.ts';
import { verifyPassword } from '../../src/auth/passwords.ts';
import { displayUrl } from '../../src/cli/migrate.ts';
import type { HistoryPage, StoredResource } from '../../src/store/store.ts';
import { storeKey } from '../store-key.ts';
import { freshSchema, pgSkip, postgresUrl } from '../postgres.ts';
import { syntheaNdjson } from '../shared-data.ts';
import { call, patient } from '../rest/server.ts';
import { cli, cliAsync } from './run-bastion.ts';

const ssnSystem = 'http://hl7.org/fhir/sid/us-ssn';
const confidentiality = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

// Data dirs sealed under a master key from the environment, as in production. Children inherit it.
const savedMasterKey = process.env.BASTION_MASTER_KEY;
process.env.BASTION_MASTER_KEY = randomBytes(32).toString('hex');

const root = mkdtempSync(join(tmpdir(), 'bastion-migrate-'));
const source = join(root, 'source');
/** The URL without its password, which comes from PGPASSWORD in some runs. */
const bare = postgresUrl ? displayUrl(postgresUrl) : '';
const password = postgresUrl ? decodeURIComponent(new URL(postgresUrl).password) : '';



/** A server on the embedded store, or (with a schema) on PostgreSQL, both with the data dir's keys. */
function serverOn(dataDir: string, schema?: string): Promise<Server> {
  const env: Record<string, string> = { BASTION_AUTH: 'off', BASTION_TLS: 'off', BASTION_AUDIT_CHECKPOINT_SECONDS: '1' };
  if (schema) Object.assign(env, { BASTION_DATABASE_URL: postgresUrl!, BASTION_DATABASE_SCHEMA: schema });
  return startServer(loadConfig({ port: 0, dataDir }, env));
}

async function withDb<T>(schema: string, work: (db: Database) => Promise<T>): Promise<T> {
  const db = new Database({ url: postgresUrl!, schema, max: 2 });
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

async function schemaExists(schema: string): Promise<boolean> {
  return withDb('public', async (db) => (await db.query('SELECT 1 FROM pg_namespace WHERE nspname = ?', [schema])).length === 1);
}

/** The records of a data dir's audit file, in order, with their links. */
async function embeddedChain(dataDir: string): Promise<{ seq: number; recorded: string; event: string; hash: Buffer | null }[]> {
  const db = openEncrypted(join(dataDir, 'bastion-audit.db'), await storeKey(dataDir, 'bastion-audit.db'), { readonly: true });
  try {
    return [...sqliteChainRows(db)];
  } finally {
    db.close();
  }
}

/** Copies a stopped data dir (files and keys) to `to`. */
function copyDataDir(from: string, to: string): void {
  mkdirSync(to, { recursive: true, mode: 0o700 });
  for (const f of readdirSync(from)) if (!f.endsWith('-wal') && !f.endsWith('-shm')) copyFileSync(join(from, f), join(to, f));
}

const migrateFailed = (r: { status: number | null; stderr: string }, pattern: RegExp, what: string) => {
  assert.equal(r.status, 1, `${what}: ${r.stderr}`);
  assert.match(r.stderr, pattern, what);
};

after(() => {
  rmSync(root, { recursive: true, force: true });
  if (savedMasterKey === undefined) delete process.env.BASTION_MASTER_KEY;
  else process.env.BASTION_MASTER_KEY = savedMasterKey;
});

describe('bastion migrate', { skip: pgSkip }, () => {
  const schema = freshSchema('migrate');
  const written: { type: string; id: string; versionId: string; body: unknown }[] = [];
  let ssn = '';
  let family = '';
  let labelled = '';
  let updatedId = '';
  let deletedId = '';
  let beforeWrites = '';
  let summary = '';
  let progress = '';
  const revokedJti = `jti-${randomBytes(8).toString('hex')}`;
  const userPassword = `Pw-${randomBytes(12).toString('hex')}`;

  before(async () => {
    // Synthea patients (with SSNs) through the import path, then writes with history through the server.
    const files = ['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'Patient', 'Condition'].map((t) => join(syntheaNdjson, `${t}.000.ndjson`));
    const imported = cli(['import', '-q', '--data-dir', source, ...files]);
    assert.equal(imported.status, 0, imported.stderr);
    const first = JSON.parse(readFileSync(join(syntheaNdjson, 'Patient.000.ndjson'), 'utf8').split('\n')[0]) as { name: { family: string }[]; identifier: { system?: string; value: string }[] };
    family = first.name[0].family;
    ssn = first.identifier.find((i) => i.system === ssnSystem)!.value;
    assert.ok(ssn, 'a Synthea patient with an SSN');

    const server = await serverOn(source);
    try {
      const base = server.baseUrl;
      const write = async (resource: Record<string, unknown>) => {
        const put = typeof resource.id === 'string';
        const r = await call(put ? `${base}/${resource.resourceType}/${resource.id}` : `${base}/${resource.resourceType}`, { method: put ? 'PUT' : 'POST', json: resource });
        assert.ok(r.status === 200 || r.status === 201, r.text);
        written.push({ type: r.body.resourceType, id: r.body.id, versionId: r.body.meta.versionId, body: r.body });
        return r.body as Record<string, unknown> & { id: string };
      };
      beforeWrites = new Date().toISOString();
      for (let i = 0; i < 6; i++) {
        const p = await write(patient(`Migratova${i}`, { identifier: [{ system: ssnSystem, value: `900-10-${1000 + i}` }, { system: 'urn:test:mrn', value: `MRN-MIG-${i}` }] }));
        await write({ ...p, birthDate: '1971-02-03' });
        await write({ ...p, birthDate: '1972-02-03', gender: 'male' });
        if (i === 0) updatedId = p.id;
      }
      const secret = await write(patient('Restrictova', { meta: { security: [{ system: confidentiality, code: 'R' }] } }));
      labelled = secret.id;
      const gone = await write(patient('Deletova'));
      deletedId = gone.id;
      assert.equal((await call(`${base}/Patient/${gone.id}`, { method: 'DELETE' })).status < 300, true);
      await write({ resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${updatedId}` }, valueQuantity: { value: 71.5, unit: 'kg' } });
      // A signed checkpoint or two.
      await new Promise((r) => setTimeout(r, 1200));
    } finally {
      await server.close();
    }
    // A user with a password, a client and a revoked token: the console and the auth file, with the server stopped.
    writeFileSync(join(root, 'password'), `${userPassword}\n`, { mode: 0o600 });
    const user = cli(['users', 'add', '--data-dir', source, '--username', 'migrate.nurse', '--role', 'nurse', '--password-file', join(root, 'password')]);
    assert.equal(user.status, 0, user.stderr);
    const client = cli(['clients', 'add', '--data-dir', source, '--name', 'Migrate App', '--type', 'public', '--scope', 'openid patient/*.rs', '--redirect-uri', 'https://app.example/cb']);
    assert.equal(client.status, 0, client.stderr);
    const keys = await openKeys(source);
    const auth = new SqliteAuthStore(join(source, 'bastion-auth.db'), await storeKey(source, 'bastion-auth.db'));
    try {
      await auth.oauthUpsert('RevokedAccessToken', revokedJti, { jti: revokedJti }, 3600);
      await auth.oauthUpsert('ExpiredThing', 'gone', { x: 1 }, -10);
    } finally {
      await auth.close();
      await keys.provider.close?.();
    }
  });

  test('migrate has --help; --to is required and must be a postgres URL', () => {
    const help = cli(['migrate', '--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage: bastion migrate --to <postgres URL>/);
    assert.match(cli(['--help']).stdout, /migrate +move this embedded deployment to PostgreSQL/);
    assert.equal(cli(['migrate', '--data-dir', source]).status, 2);
    assert.equal(cli(['migrate', '--data-dir', source, '--to', 'mysql://x@h/db']).status, 2);
    assert.equal(cli(['migrate', '--data-dir', source, '--to', postgresUrl!, '--schema', 'Bad-Name']).status, 2);
  });

  test('refused while the embedded server runs, and nothing is created', async () => {
    const server = await serverOn(source);
    try {
      const r = await cliAsync(['migrate', '--data-dir', source, '--to', postgresUrl!, '--schema', schema]);
      migrateFailed(r, /in use by another process .*stop it first/, 'server running');
    } finally {
      await server.close();
    }
    assert.equal(await schemaExists(schema), false);
  });

  test('moves every version, the index, users, clients and the audit trail, and verifies them', async () => {
    const r = cli(['migrate', '--data-dir', source, '--to', bare, '--schema', schema], { PGPASSWORD: password });
    assert.equal(r.status, 0, r.stderr);
    summary = r.stdout;
    progress = r.stderr;
    assert.match(summary, new RegExp(`migrated .*source to PostgreSQL ${bare.replace(/[.?*+^$[\]\\(){}|-]/g, '\\$&')}, schema ${schema} \\(created\\)`));
    assert.match(summary, /auth: 1 users, 1 clients, \d+ live protocol records/);
    assert.match(summary, /verified: counts per type/);
    assert.match(summary, /The keys stay in .*the same key files/);
    assert.match(progress, /versions: [\d,]+ of [\d,]+/);
    assert.match(progress, /check audit: [\d,]+ of [\d,]+/);
    assert.equal(await schemaExists(schema), true);
  });

  test('the password is never printed', async () => {
    assert.ok(password.length > 0);
    for (const text of [summary, progress]) assert.doesNotMatch(text, new RegExp(`:${password}@`));
    assert.equal(displayUrl('postgres://u:S3cr3t-pw@db.example:5432/x?sslmode=require&password=S3cr3t-pw'), 'postgres://u@db.example:5432/x?sslmode=require');
    // Given in the URL: a whole migration (progress, summary) shows the URL without it.
    const other = freshSchema('password');
    const r = cli(['migrate', '--data-dir', source, '--to', postgresUrl!, '--schema', other]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(bare.replace(/[.?*+^$[\]\\(){}|-]/g, '\\$&')));
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(`:${password}@`));
    // A wrong one is not repeated in the error either.
    const wrong = new URL(postgresUrl!);
    wrong.password = 'Wr0ng-S3cret-Pw';
    const refused = cli(['migrate', '--data-dir', source, '--to', wrong.toString(), '--schema', freshSchema('password')]);
    migrateFailed(refused, /PostgreSQL \(postgres:\/\/[^:@]+@.*\): password authentication failed/, 'wrong password');
    assert.doesNotMatch(refused.stdout + refused.stderr, /Wr0ng-S3cret-Pw/);
  });

  test('every version reads back by vread with identical JSON; history totals are equal', async () => {
    const keys = await openKeys(source);
    const embedded = await openStore(source, keys);
    const pg = await openStore(source, keys, { database: { url: postgresUrl!, schema, poolSize: 4 } });
    try {
      assert.ok(pg instanceof PgStore);
      const db = openEncrypted(join(source, 'bastion.db'), await storeKey(source), { readonly: true });
      const versions = db.prepare('SELECT r.type, r.id, v.version FROM resource_versions v JOIN resources r ON r.rid = v.rid ORDER BY v.seq').all() as { type: string; id: string; version: number }[];
      const types = (db.prepare('SELECT DISTINCT type FROM resources').pluck().all() as string[]);
      db.close();
      assert.ok(versions.length > 500, `${versions.length} versions`);
      for (const v of versions) {
        const [a, b]: (StoredResource | undefined)[] = await Promise.all([embedded.vread(v.type, v.id, String(v.version)), pg.vread(v.type, v.id, String(v.version))]);
        assert.ok(a && b, `${v.type}/${v.id}/_history/${v.version}`);
        assert.deepEqual(b, a, `${v.type}/${v.id}/_history/${v.version}`);
      }
      // What the server wrote reads back as it answered then.
      for (const w of written) assert.deepEqual(JSON.parse((await pg.vread(w.type, w.id, w.versionId))!.json!), w.body);
      assert.equal((await pg.read('Patient', deletedId))?.deleted, true);
      for (const query of [{}, ...types.map((resourceType) => ({ resourceType })), { resourceType: 'Patient', id: updatedId }, { since: beforeWrites }]) {
        const [a, b]: HistoryPage[] = await Promise.all([embedded.history({ ...query, count: 10, offset: 0 }), pg.history({ ...query, count: 10, offset: 0 })]);
        assert.equal(b.total, a.total, JSON.stringify(query));
        assert.deepEqual(b.entries.map((e) => JSON.stringify(e)), a.entries.map((e) => JSON.stringify(e)), JSON.stringify(query));
      }
    } finally {
      await embedded.close();
      await pg.close();
      await keys.provider.close?.();
    }
  });

  test('at rest in PostgreSQL: bodies sealed, the SSN only as a blind index, security labels kept', async () => {
    await withDb(schema, async (db) => {
      const [{ n }] = await db.query<{ n: number }>('SELECT count(*) AS n FROM resource_versions WHERE content IS NOT NULL OR (sealed IS NULL AND deleted = 0)');
      assert.equal(n, 0, 'every body sealed');
      const [{ m }] = await db.query<{ m: number }>('SELECT count(*) AS m FROM search_token WHERE code = ? OR code = ?', [ssn, '900-10-1000']);
      assert.equal(m, 0, 'no SSN in clear in the index');
      const [row] = await db.query<{ security: number }>(`SELECT security FROM resources WHERE type = 'Patient' AND id = ?`, [labelled]);
      assert.ok(row.security !== 0, 'the R label bit');
      const [{ marker }] = await db.query<{ marker: number }>(`SELECT count(*) AS marker FROM store_meta WHERE key = 'migration'`);
      assert.equal(marker, 0, 'the migration is marked finished');
    });
  });

  test('searches give the same results as on the embedded store: name, SSN through the blind index, _lastUpdated, security label', async () => {
    const queries = [
      `Patient?family=${encodeURIComponent(family)}`,
      `Patient?identifier=${encodeURIComponent(`${ssnSystem}|${ssn}`)}`,
      `Patient?identifier=${encodeURIComponent(`${ssnSystem}|900-10-1003`)}`,
      `Patient?identifier=MRN-MIG-2`,
      `Patient?_lastUpdated=ge${encodeURIComponent(beforeWrites)}&_count=50`,
      `Patient?_security=${encodeURIComponent(`${confidentiality}|R`)}`,
      `Observation?subject=Patient/${updatedId}`,
      'Condition?_count=20&_sort=-_lastUpdated',
    ];
    const results = async (server: Server) => {
      const out: unknown[] = [];
      for (const q of queries) {
        const r = await call(`${server.baseUrl}/${q}`);
        assert.equal(r.status, 200, `${q}: ${r.text}`);
        out.push({ q, total: r.body.total, entries: (r.body.entry ?? []).map((e: { resource: unknown }) => e.resource) });
      }
      return out;
    };
    // The embedded store first (its server is the reference), then a server on PostgreSQL.
    const embedded = await serverOn(source);
    let expected: unknown[];
    try {
      expected = await results(embedded);
    } finally {
      await embedded.close();
    }
    const pg = await serverOn(source, schema);
    try {
      const found = await results(pg);
      assert.deepEqual(found, expected);
      const bySsn = expected[1] as { entries: { name: { family: string }[] }[] };
      assert.equal(bySsn.entries.length, 1);
      assert.equal(bySsn.entries[0].name[0].family, family);
      assert.equal((expected[5] as { entries: { id: string }[] }).entries[0].id, labelled);
      // New writes go on after the migrated ones.
      const next = await call(`${pg.baseUrl}/Patient/${updatedId}`, { method: 'PUT', json: { ...(written.find((w) => w.id === updatedId && w.versionId === '3')!.body as object), birthDate: '1973-03-04' } });
      assert.equal(next.status, 200, next.text);
      assert.equal(next.body.meta.versionId, '4');
      const created = await call(`${pg.baseUrl}/Patient`, { method: 'POST', json: patient('Afterova') });
      assert.equal(created.status, 201, created.text);
    } finally {
      await pg.close();
    }
  });

  test('users, clients and revocations are there, sealed, and work', async () => {
    const keys = await openKeys(source);
    const auth = await openAuthStore({ dataDir: source, database: { url: postgresUrl!, schema, poolSize: 4 } }, keys);
    try {
      const user = await auth.userByName('migrate.nurse');
      assert.ok(user, 'the user is found by name');
      assert.equal(user.role, 'nurse');
      assert.equal(await verifyPassword(userPassword, user.passwordHash!), true, 'the password still signs in');
      assert.equal(await auth.countUsers(), 1);
      // Found by the raw id, though only its digest was carried over.
      assert.deepEqual((await auth.oauthFind('RevokedAccessToken', revokedJti))?.payload, { jti: revokedJti });
      assert.deepEqual(await auth.oauthList('ExpiredThing'), []);
    } finally {
      await auth.close();
      await keys.provider.close?.();
    }
    await withDb(schema, async (db) => {
      const [{ n }] = await db.query<{ n: number }>('SELECT count(*) AS n FROM auth_clients');
      assert.equal(n, 1);
      const rows = await db.query<{ record: Buffer }>('SELECT record FROM auth_users');
      assert.equal(rows[0].record.includes(Buffer.from('migrate.nurse')), false, 'the record is sealed');
    });
  });

  test('the audit trail: identical record by record, verified, with its checkpoints; the migration on both trails', async () => {
    const source_ = await embeddedChain(source);
    const rows: PgChainRow[] = [];
    const store = await PgStore.open({ url: postgresUrl!, schema });
    let checkpoints;
    try {
      for await (const row of store.auditLog.chainRows()) rows.push(row);
      checkpoints = await store.auditLog.checkpoints();
    } finally {
      await store.close();
    }
    assert.equal(verifyChain(rows).ok, true);
    assert.equal(rows[0].seq, 1);
    // The embedded trail: ..., started (copied), done. PostgreSQL: ..., started, verified, then the PostgreSQL servers' own.
    const started = source_.findIndex((r) => /"ev":"migrated".*phase=started/.test(r.event));
    assert.ok(started > 0);
    const copied = source_.slice(0, started + 1);
    assert.deepEqual(rows.slice(0, copied.length).map((r) => [r.seq, r.recorded, r.event, r.hash!.toString('hex')]), copied.map((r) => [r.seq, r.recorded, r.event, r.hash!.toString('hex')]));
    const verified = JSON.parse(rows[copied.length].event);
    assert.equal(verified.ev, 'migrated');
    assert.match(verified.why, new RegExp(`^phase=verified from=embedded:.* to=${bare.replace(/[.?*+^$[\]\\(){}|-]/g, '\\$&')} schema=${schema} resources=\\d+ versions=\\d+ users=1 clients=1 audit-records=${copied.length} audit-head=${copied[copied.length - 1].hash!.toString('hex')}`));
    assert.match(JSON.parse(source_[started + 1].event).why, /^phase=done /);
    // The signed checkpoints came along, each still matching the chain, and one more signed at the migration.
    // (Those of the embedded trail from before the migration: its server has signed more since.)
    const trail = openEncrypted(join(source, 'bastion-audit.db'), await storeKey(source, 'bastion-audit.db'), { readonly: true });
    const embeddedCheckpoints = sqliteCheckpoints(trail).filter((c) => c.count <= copied.length);
    trail.close();
    assert.ok(embeddedCheckpoints.length >= 1);
    assert.deepEqual(checkpoints.slice(0, embeddedCheckpoints.length), embeddedCheckpoints);
    const publicKey = await auditSigningKey(source, 'public');
    const atMigration = checkpoints[embeddedCheckpoints.length];
    assert.equal(atMigration.count, copied.length + 1);
    for (const c of checkpoints) {
      const signed = await verifiedCheckpoint(c.jws, publicKey);
      assert.ok(signed && signed.count === c.count);
      assert.equal(rows[c.count - 1].hash!.toString('hex'), signed.head);
    }
  });

  test('a second migrate into the same schema is refused and changes nothing', async () => {
    const count = () => withDb(schema, async (db) => (await db.query<{ n: number }>('SELECT count(*) AS n FROM resource_versions'))[0].n);
    const before = await count();
    const r = cli(['migrate', '--data-dir', source, '--to', postgresUrl!, '--schema', schema]);
    migrateFailed(r, /schema ".*" already holds Bastion data: a migration never merges into or overwrites a database/, 'second migrate');
    assert.equal(await count(), before);
  });

  test('a schema holding anything else is refused and left as it was', async () => {
    const other = freshSchema('occupied');
    await withDb('public', (db) => db.exec(`CREATE SCHEMA ${other}; CREATE TABLE ${other}.notes (t text); INSERT INTO ${other}.notes VALUES ('mine')`));
    migrateFailed(cli(['migrate', '--data-dir', source, '--to', postgresUrl!, '--schema', other]), /is not empty \(\d+ objects\)/, 'occupied schema');
    await withDb(other, async (db) => assert.deepEqual(await db.query('SELECT t FROM notes'), [{ t: 'mine' }]));
  });

  test('a failure midway leaves nothing in PostgreSQL, and the attempt is on the embedded trail', async () => {
    const copy = (name: string) => {
      const dir = join(root, name);
      copyDataDir(source, dir);
      return dir;
    };
    const failedOnTrail = async (dir: string) => (await embeddedChain(dir)).some((r) => /"ev":"migrated".*"st":401.*phase=failed/.test(r.event));

    // A version whose encrypted SSN was altered: the copy stops when it cannot decode it.
    const corrupt = copy('corrupt-body');
    {
      const db = openEncrypted(join(corrupt, 'bastion.db'), await storeKey(corrupt));
      const row = db.prepare(`SELECT v.seq, v.content FROM resource_versions v WHERE v.content LIKE '%urn:bastion:encrypted-identifier%' ORDER BY v.seq DESC LIMIT 1`).get() as { seq: number; content: string };
      // A character inside the ciphertext (past its header): the GCM tag no longer matches.
      const at = row.content.indexOf('"valueBase64Binary":"') + '"valueBase64Binary":"'.length + 24;
      const altered = row.content.slice(0, at) + (row.content[at] === 'A' ? 'B' : 'A') + row.content.slice(at + 1);
      db.prepare('UPDATE resource_versions SET content = ? WHERE seq = ?').run(altered, row.seq);
      db.close();
    }
    const s1 = freshSchema('corrupt');
    migrateFailed(cli(['migrate', '--data-dir', corrupt, '--to', postgresUrl!, '--schema', s1]), /migration failed, schema ".*" dropped: .*does not decrypt/, 'corrupted body');
    assert.equal(await schemaExists(s1), false);
    assert.equal(await failedOnTrail(corrupt), true);

    // An audit record altered in place: everything is copied, then the chain comparison fails.
    const tampered = copy('tampered-audit');
    let altered = 0;
    {
      const db = openEncrypted(join(tampered, 'bastion-audit.db'), await storeKey(tampered, 'bastion-audit.db'));
      db.exec('DROP TRIGGER audit_log_no_update');
      altered = 5;
      db.prepare(`UPDATE audit_log SET event = event || ' ' WHERE seq = ?`).run(altered);
      db.close();
    }
    const s2 = freshSchema('tampered');
    migrateFailed(cli(['migrate', '--data-dir', tampered, '--to', postgresUrl!, '--schema', s2]), new RegExp(`migration failed, schema ".*" dropped: audit record ${altered}: its link differs`), 'tampered audit');
    assert.equal(await schemaExists(s2), false);

    // A schema where no table can be created: it was there (empty) before, and is left so.
    const s3 = freshSchema('readonly');
    await withDb('public', (db) => db.exec(`CREATE SCHEMA ${s3}; REVOKE CREATE ON SCHEMA ${s3} FROM CURRENT_USER`));
    migrateFailed(cli(['migrate', '--data-dir', source, '--to', postgresUrl!, '--schema', s3]), /migration failed, everything made in schema ".*" dropped: .*permission denied/, 'unwritable schema');
    await withDb('public', async (db) => {
      const [{ n }] = await db.query<{ n: number }>('SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = ?', [s3]);
      assert.equal(n, 0);
    });
    assert.equal(await failedOnTrail(source), true);
  });

  test('a trail purged after retention goes on from its purge: the anchor is carried and verifies', async () => {
    const purged = join(root, 'purged');
    copyDataDir(source, purged);
    const keys = await openKeys(purged);
    const db = openEncrypted(join(purged, 'bastion-audit.db'), await storeKey(purged, 'bastion-audit.db'));
    let through: number;
    try {
      // Seven years from now every record here is past retention.
      const now = new Date(Date.now() + 7 * 366 * 24 * 3600 * 1000);
      const result = await purgeAuditTrail(db, {
        before: new Date(Date.now() - 1000), years: 6, who: 'console:test', key: await auditSigningKey(purged, 'private', keys), publicKey: await auditSigningKey(purged, 'public', keys), now,
      });
      through = result.through;
      assert.ok(result.removed > 10);
    } finally {
      db.close();
      await keys.provider.close?.();
    }
    const s = freshSchema('purged');
    const r = cli(['migrate', '--data-dir', purged, '--to', postgresUrl!, '--schema', s]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`after 1 purge: from record ${(through + 1).toLocaleString('en-US')}`));
    const store = await PgStore.open({ url: postgresUrl!, schema: s });
    try {
      const rows: PgChainRow[] = [];
      for await (const row of store.auditLog.chainRows()) rows.push(row);
      const [purge] = await store.auditLog.purges();
      assert.equal(purge.through, through);
      assert.equal(rows[0].seq, through + 1);
      assert.equal(verifyChain(rows, { seq: purge.through, head: purge.head }).ok, true);
      assert.equal(verifyChain(rows).ok, false, 'without the anchor the first record does not chain from the start');
      const embedded = await embeddedChain(purged);
      assert.deepEqual(rows.slice(0, embedded.length - 1).map((x) => x.hash!.toString('hex')), embedded.slice(0, -1).map((x) => x.hash!.toString('hex')));
    } finally {
      await store.close();
    }
  });
});
