import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { backupDataDir, restoreDataDir, type BackupSummary } from '../../src/cli/backup.ts';
import { verifyAuditFile } from '../../src/cli/audit.ts';
import { openEncrypted } from '../../src/store/sqlite/open.ts';
import { storeKey } from '../store-key.ts';
import { auditEventsIn } from '../audit/audit-file.ts';
import { syntheaNdjson } from '../shared-data.ts';
import { call, patient } from '../rest/server.ts';
import { cli, cliAsync } from './run-bastion.ts';

const local = { kind: 'local' } as const;

// The data dirs of this file are sealed under a master key from the environment, as in production
// (the development master.key case has a test of its own). Children inherit it.
const savedMasterKey = process.env.BASTION_MASTER_KEY;
const masterKey = randomBytes(32).toString('hex');
process.env.BASTION_MASTER_KEY = masterKey;

const root = mkdtempSync(join(tmpdir(), 'bastion-backup-'));
const source = join(root, 'source');
const archive = join(root, 'online.bbk');

/** Every write acknowledged: its order in its writer, and the resource as the server returned it. */
interface Written {
  writer: number;
  seq: number;
  resourceType: string;
  id: string;
  versionId: string;
  body: unknown;
  /** Acknowledged before the backup command was started: must be in the backup. */
  before: boolean;
}
const written: Written[] = [];
let backupSummaryText = '';
let backupStderr = '';
let duringBackup = 0;
const knownNames: string[] = [];
const knownIdentifiers: string[] = [];



async function serverOn(dataDir: string): Promise<Server> {
  return startServer(loadConfig({ port: 0, dataDir }, { BASTION_AUTH: 'off', BASTION_TLS: 'off' }));
}

async function write(base: string, resource: Record<string, unknown>, writer: number, seq: number, before: boolean): Promise<Written> {
  const put = typeof resource.id === 'string';
  const r = await call(put ? `${base}/${resource.resourceType}/${resource.id}` : `${base}/${resource.resourceType}`, { method: put ? 'PUT' : 'POST', json: resource });
  assert.ok(r.status === 200 || r.status === 201, r.text);
  const w = { writer, seq, resourceType: r.body.resourceType, id: r.body.id, versionId: r.body.meta.versionId, body: r.body, before };
  written.push(w);
  return w;
}

before(async () => {
  // Synthea patients through the import path (the server must be stopped for it), then the server.
  const files = ['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'Patient', 'Condition'].map((t) => join(syntheaNdjson, `${t}.000.ndjson`));
  const imported = cli(['import', '-q', '--data-dir', source, ...files]);
  assert.ok(existsSync(join(source, 'bastion.db')), imported.stderr);
  for (const line of readFileSync(join(syntheaNdjson, 'Patient.000.ndjson'), 'utf8').split('\n').filter(Boolean).slice(0, 5)) {
    const p = JSON.parse(line) as { name: { family: string; given: string[] }[]; identifier: { value: string }[] };
    knownNames.push(p.name[0].family, p.name[0].given[0]);
    knownIdentifiers.push(...p.identifier.map((i) => i.value).filter((v) => v.length >= 8));
  }

  const server = await serverOn(source);
  const base = server.baseUrl;
  try {
    // Users and clients, with the server running (the console writes the auth file beside it).
    const user = cli(['users', 'add', '--data-dir', source, '--username', 'backup.nurse', '--role', 'nurse']);
    assert.equal(user.status, 0, user.stderr);
    const client = cli(['clients', 'add', '--data-dir', source, '--name', 'Backup App', '--type', 'public', '--scope', 'openid patient/*.rs', '--redirect-uri', 'https://app.example/cb']);
    assert.equal(client.status, 0, client.stderr);

    // Resources with history: created, updated twice, one deleted.
    for (let i = 0; i < 12; i++) {
      const created = await write(base, patient(`Quillfeather${i}`, { identifier: [{ system: 'urn:test:mrn', value: `MRN-BKP-${100000 + i}` }] }), 0, written.length, true);
      knownNames.push(`Quillfeather${i}`);
      knownIdentifiers.push(`MRN-BKP-${100000 + i}`);
      for (let v = 0; v < 2; v++) {
        await write(base, { ...(created.body as Record<string, unknown>), birthDate: `19${70 + v}-01-0${1 + (i % 9)}` }, 0, written.length, true);
      }
    }
    const gone = written[0];
    const del = await call(`${base}/Patient/${gone.id}`, { method: 'DELETE' });
    assert.ok(del.status === 200 || del.status === 204, del.text);
    await call(`${base}/Observation`, { method: 'POST', json: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${written[3].id}` }, valueQuantity: { value: 71.5, unit: 'kg' } } });

    // The backup runs in its own process while two writers keep writing here.
    let stop = false;
    const writers = [1, 2].map(async (writer) => {
      let seq = 0;
      let last: Written | undefined;
      while (!stop) {
        last = last && seq % 2 === 1
          ? await write(base, { ...(last.body as Record<string, unknown>), gender: seq % 4 === 1 ? 'male' : 'female' }, writer, seq, false)
          : await write(base, patient(`Concurrent${writer}x${seq}`), writer, seq, false);
        seq++;
        duringBackup++;
      }
    });
    const backup = await cliAsync(['backup', '--data-dir', source, '--out', archive]);
    stop = true;
    await Promise.all(writers);
    backupSummaryText = backup.stdout;
    backupStderr = backup.stderr;
    assert.equal(backup.status, 0, backup.stderr);
  } finally {
    await server.close();
  }
});

after(() => {
  rmSync(root, { recursive: true, force: true });
  if (savedMasterKey === undefined) delete process.env.BASTION_MASTER_KEY;
  else process.env.BASTION_MASTER_KEY = savedMasterKey;
});

test('backup and restore have --help', () => {
  for (const cmd of ['backup', 'restore']) {
    const r = cli([cmd, '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Usage: bastion ${cmd}`));
  }
  assert.equal(cli(['backup']).status, 2, '--out is required');
  assert.equal(cli(['restore', '--from', archive]).status, 2, '--data-dir is required');
});

test('an online backup: summary, counts, the master key is said to be kept apart', () => {
  assert.ok(duringBackup > 0, 'writes went on during the backup');
  assert.match(backupSummaryText, /backup written: .*online\.bbk/);
  assert.match(backupSummaryText, /bastion\.db/);
  assert.match(backupSummaryText, /bastion-audit\.db/);
  assert.match(backupSummaryText, /bastion-auth\.db/);
  assert.match(backupSummaryText, /keyring|local keyring/);
  assert.match(backupSummaryText, /\d[\d,]* resources \(\d[\d,]* versions\); auth: 1 users, 1 clients; audit trail: [\d,]+ records \(head seq [\d,]+\)/);
  assert.match(backupSummaryText, /master key is not in the archive: keep it separately/);
  assert.doesNotMatch(backupStderr, /warning/, 'no development master key here, and the trail covered the store copy');
  assert.equal(statSync(archive).mode & 0o777, 0o600);
  assert.ok(!readdirSync(source).some((f) => f.startsWith('.backup-')), 'the scratch snapshots are gone');
});

test('the archive holds no plaintext: no patient name, identifier or FHIR JSON, no master key', () => {
  const bytes = readFileSync(archive);
  assert.ok(knownNames.length > 10 && knownIdentifiers.length > 10);
  for (const s of [...knownNames, ...knownIdentifiers, '"resourceType"', 'SQLite format 3', 'backup.nurse', 'Backup App', masterKey]) {
    assert.equal(bytes.includes(Buffer.from(s)), false, `${s} is readable in the archive`);
  }
  assert.equal(bytes.includes(Buffer.from(masterKey, 'hex')), false);
});

test('restore brings back every resource and version, the audit trail and the users and clients', async () => {
  const target = join(root, 'restored');
  const r = cli(['restore', '--from', archive, '--data-dir', target]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /restored \d+ files .* into .*restored/);
  assert.match(r.stdout, /audit trail: chain and signed checkpoints intact/);
  assert.equal(statSync(target).mode & 0o777, 0o700);
  for (const f of readdirSync(target)) assert.equal(statSync(join(target, f)).mode & 0o777, 0o600, f);
  assert.equal(existsSync(join(target, 'master.key')), false);

  const verify = cli(['audit', 'verify', '--data-dir', target]);
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(verify.stdout, /audit chain intact/);
  const restoreEvents = (await auditEventsIn(target)).filter((e) => JSON.stringify(e).includes('110107'));
  assert.equal(restoreEvents.length, 1, 'the restore is on the restored trail (DICOM 110107 Import)');
  assert.match(JSON.stringify(restoreEvents[0]), /archive=[0-9a-f-]+ resources=\d+/);

  // Users and clients.
  const auth = openEncrypted(join(target, 'bastion-auth.db'), await storeKey(target, 'bastion-auth.db'), { readonly: true });
  try {
    assert.equal(auth.prepare('SELECT count(*) FROM users WHERE username = ?').pluck().get('backup.nurse'), 1);
    assert.equal(auth.prepare('SELECT count(*) FROM clients').pluck().get(), 1);
  } finally {
    auth.close();
  }

  // The trail covers every version in the store copy (the audit file was copied after the store).
  const versions = openEncrypted(join(target, 'bastion.db'), await storeKey(target), { readonly: true });
  const trail = openEncrypted(join(target, 'bastion-audit.db'), await storeKey(target, 'bastion-audit.db'), { readonly: true });
  try {
    const named = new Set<string>();
    for (const e of trail.prepare('SELECT event FROM audit_log').pluck().iterate()) for (const w of (JSON.parse(e as string) as { what?: string[] }).what ?? []) named.add(w);
    const stored = versions.prepare('SELECT r.type, r.id, v.version FROM resource_versions v JOIN resources r ON r.rid = v.rid').all() as { type: string; id: string; version: number }[];
    const unaudited = stored.map((v) => `${v.type}/${v.id}/_history/${v.version}`).filter((ref) => !named.has(ref));
    assert.deepEqual(unaudited.slice(0, 5), [], 'every stored version has its audit record');
  } finally {
    versions.close();
    trail.close();
  }

  const server = await serverOn(target);
  try {
    const base = server.baseUrl;
    // Every version acknowledged before the backup began reads back identical.
    const before = written.filter((w) => w.before);
    assert.ok(before.length >= 36);
    for (const w of before) {
      const r = await call(`${base}/${w.resourceType}/${w.id}/_history/${w.versionId}`);
      assert.equal(r.status, 200, `${w.resourceType}/${w.id}/_history/${w.versionId}`);
      assert.deepEqual(r.body, w.body);
    }
    // The deleted one is deleted, its history kept.
    assert.equal((await call(`${base}/Patient/${written[0].id}`)).status, 410);
    // Writes made during the backup: each writer's are in the backup up to some point and not after
    // (one consistent snapshot), and those in it read back identical.
    for (const writer of [1, 2]) {
      const mine = written.filter((w) => w.writer === writer).sort((a, b) => a.seq - b.seq);
      const present: boolean[] = [];
      for (const w of mine) {
        const r = await call(`${base}/${w.resourceType}/${w.id}/_history/${w.versionId}`);
        present.push(r.status === 200);
        if (r.status === 200) assert.deepEqual(r.body, w.body);
      }
      const firstMissing = present.indexOf(false);
      if (firstMissing >= 0) assert.ok(present.slice(firstMissing).every((p) => !p), `writer ${writer}: ${present.map((p) => (p ? 1 : 0)).join('')}`);
    }
    // Synthea patients imported before: searchable as before.
    const search = await call(`${base}/Patient?family=${encodeURIComponent(knownNames[0])}`);
    assert.equal(search.status, 200);
    assert.ok(search.body.total >= 1 || search.body.entry?.length >= 1);
  } finally {
    await server.close();
  }
  // The restored server's own records go on from the restored chain.
  assert.equal((await verifyAuditFile(target, local)).ok, true);
});

test('a wrong master key is refused and nothing is written', async () => {
  const target = join(root, 'wrong-key');
  process.env.BASTION_MASTER_KEY = randomBytes(32).toString('hex');
  try {
    await assert.rejects(restoreDataDir({ from: archive, dataDir: target, keyProvider: local }), /restore refused.*master key does not open the archive's keyring/);
  } finally {
    process.env.BASTION_MASTER_KEY = masterKey;
  }
  assert.equal(existsSync(target), false);
  // No master key given at all: says which one is needed.
  delete process.env.BASTION_MASTER_KEY;
  try {
    await assert.rejects(restoreDataDir({ from: archive, dataDir: target, keyProvider: local }), /set BASTION_MASTER_KEY/);
  } finally {
    process.env.BASTION_MASTER_KEY = masterKey;
  }
  assert.equal(existsSync(target), false);
});

/** A copy of the archive, changed by `change`. */
function altered(name: string, change: (b: Buffer) => Buffer): string {
  const path = join(root, name);
  writeFileSync(path, change(Buffer.from(readFileSync(archive))));
  return path;
}

function layout(bytes: Buffer): { header: { members: { name: string; size: number }[]; chunkSize: number }; dataStart: number; headerStart: number } {
  const length = bytes.readUInt32BE(8);
  return { header: JSON.parse(bytes.subarray(12, 12 + length).toString('utf8')), dataStart: 12 + length, headerStart: 12 };
}

/** Where each member's sealed bytes start. */
function memberOffsets(bytes: Buffer): Map<string, { at: number; sealed: number }> {
  const { header, dataStart } = layout(bytes);
  const offsets = new Map<string, { at: number; sealed: number }>();
  let at = dataStart;
  for (const m of header.members) {
    const sealed = m.size + Math.max(1, Math.ceil(m.size / header.chunkSize)) * 16;
    offsets.set(m.name, { at, sealed });
    at += sealed;
  }
  return offsets;
}

test('a tampered archive is refused: flipped bit, truncation, reordered chunks, a member from another archive', async () => {
  const refuse = async (path: string, pattern: RegExp, what: string) => {
    const target = join(root, `target-${what.replace(/\W+/g, '-')}`);
    await assert.rejects(restoreDataDir({ from: path, dataDir: target, keyProvider: local }), pattern, what);
    assert.equal(existsSync(target), false, `${what}: nothing left behind`);
  };
  const size = statSync(archive).size;
  const offsets = memberOffsets(readFileSync(archive));
  const db = offsets.get('bastion.db')!;
  assert.ok(db.sealed > 2 * (1024 * 1024 + 16), 'bastion.db spans several chunks');

  // A flipped bit in the store's data, in the middle of the archive and in its last byte.
  await refuse(altered('flip-db.bbk', (b) => { b[db.at + 1024 * 1024 + 100] ^= 0x10; return b; }), /altered or is damaged: bastion\.db \(chunk 2 of \d+\) does not authenticate/, 'flipped bit in bastion.db');
  await refuse(altered('flip-end.bbk', (b) => { b[size - 1] ^= 0x01; return b; }), /does not authenticate/, 'flipped bit in the last byte');
  // A changed header (a member's listed SHA-256, still valid JSON): every chunk's AAD changes.
  await refuse(altered('flip-header.bbk', (b) => {
    const text = b.toString('latin1');
    const at = text.indexOf('"sha256":"') + 10;
    b[at] = b[at] === 0x30 ? 0x31 : 0x30;
    return b;
  }), /does not authenticate \(or its header was changed\)/, 'changed header');
  // Truncated (anywhere), or with bytes appended.
  await refuse(altered('truncated.bbk', (b) => b.subarray(0, size - 1000)), /is truncated/, 'truncated');
  await refuse(altered('truncated-header.bbk', (b) => b.subarray(0, 40)), /truncated/, 'truncated in the header');
  await refuse(altered('appended.bbk', (b) => Buffer.concat([b, Buffer.from('more')])), /more than its header describes/, 'appended');
  // Two chunks of the store swapped.
  await refuse(altered('swapped.bbk', (b) => {
    const chunk = 1024 * 1024 + 16;
    const first = Buffer.from(b.subarray(db.at, db.at + chunk));
    b.copy(b, db.at, db.at + chunk, db.at + 2 * chunk);
    first.copy(b, db.at + chunk);
    return b;
  }), /bastion\.db \(chunk 1 of \d+\) does not authenticate/, 'reordered chunks');
  // Not an archive.
  await refuse(altered('not.bbk', (b) => { b[0] = 0x58; return b; }), /not a Bastion backup archive/, 'not an archive');

  // A member taken from another archive of the same data dir (same size, another archive key).
  const second = join(root, 'offline.bbk');
  const summary: BackupSummary = await backupDataDir({ dataDir: source, out: second, keyProvider: local });
  assert.deepEqual(summary.warnings, []);
  const other = readFileSync(second);
  const theirs = memberOffsets(other).get('data-keys.json')!;
  const ours = offsets.get('data-keys.json')!;
  assert.equal(theirs.sealed, ours.sealed);
  await refuse(altered('spliced.bbk', (b) => { other.copy(b, ours.at, theirs.at, theirs.at + theirs.sealed); return b; }), /data-keys\.json \(chunk 1 of 1\) does not authenticate/, 'member from another archive');
  // The untouched second archive restores (an offline backup: the server is stopped by now).
  const target = join(root, 'restored-offline');
  const restored = await restoreDataDir({ from: second, dataDir: target, keyProvider: local });
  assert.equal(restored.contents.resources, summary.contents.resources);
  assert.equal(restored.contents.audit.head, summary.contents.audit.head);
});

test('a non-empty target dir is refused and left as it was', async () => {
  const target = join(root, 'occupied');
  mkdirSync(target);
  writeFileSync(join(target, 'notes.txt'), 'mine');
  await assert.rejects(restoreDataDir({ from: archive, dataDir: target, keyProvider: local }), /is not empty/);
  assert.deepEqual(readdirSync(target), ['notes.txt']);
  const r = cli(['restore', '--from', archive, '--data-dir', target]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bastion restore: restore refused.*is not empty/);
  // A backup never overwrites a file either.
  const b = cli(['backup', '--data-dir', source, '--out', join(target, 'notes.txt')]);
  assert.equal(b.status, 1);
  assert.match(b.stderr, /exists/);
  assert.equal(readFileSync(join(target, 'notes.txt'), 'utf8'), 'mine');
});

test('the development master.key: the backup warns it is not in the archive; the restore needs a copy of it', async () => {
  const dev = join(root, 'dev');
  delete process.env.BASTION_MASTER_KEY;
  try {
    const server = await serverOn(dev);
    try {
      assert.equal((await call(`${server.baseUrl}/Patient`, { method: 'POST', json: patient('Devkeyson') })).status, 201);
    } finally {
      await server.close();
    }
    assert.ok(existsSync(join(dev, 'master.key')));
    const out = join(root, 'dev.bbk');
    const summary = await backupDataDir({ dataDir: dev, out, keyProvider: local });
    assert.match(summary.warnings.join('\n'), /development file .*master\.key\. It is NOT in the archive/);
    assert.equal(summary.members.some((m) => m.name === 'master.key'), false);
    assert.equal(readFileSync(out).includes(readFileSync(join(dev, 'master.key'))), false);

    const empty = join(root, 'dev-restored-no-key');
    await assert.rejects(restoreDataDir({ from: out, dataDir: empty, keyProvider: local }), /development master\.key: copy that file into/);
    assert.equal(existsSync(empty), false);

    const target = join(root, 'dev-restored');
    mkdirSync(target);
    copyFileSync(join(dev, 'master.key'), join(target, 'master.key'));
    const restored = await restoreDataDir({ from: out, dataDir: target, keyProvider: local });
    assert.equal(restored.contents.resources, summary.contents.resources);
    // A failed restore into such a dir keeps the master.key that was put there.
    const again = join(root, 'dev-restored-2');
    mkdirSync(again);
    writeFileSync(join(again, 'master.key'), randomBytes(32).toString('hex') + '\n');
    await assert.rejects(restoreDataDir({ from: out, dataDir: again, keyProvider: local }), /master key does not open/);
    assert.deepEqual(readdirSync(again), ['master.key']);
  } finally {
    process.env.BASTION_MASTER_KEY = masterKey;
  }
});

test('snapshot folders a killed backup left are removed at the next start once a day old', async () => {
  const { removeAbandonedSnapshots } = await import('../../src/store/sqlite/snapshot.ts');
  const { utimesSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'bastion-abandoned-'));
  try {
    mkdirSync(join(dir, '.backup-old'));
    writeFileSync(join(dir, '.backup-old', 'bastion.db'), 'x');
    mkdirSync(join(dir, '.backup-running'));
    const dayAgo = (Date.now() - 2 * 86_400_000) / 1000;
    utimesSync(join(dir, '.backup-old'), dayAgo, dayAgo);
    assert.deepEqual(removeAbandonedSnapshots(dir), ['.backup-old']);
    assert.deepEqual(readdirSync(dir).sort(), ['.backup-running'], 'a backup under way keeps its folder');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backup and restore refuse a PostgreSQL deployment, pointing at its own tools', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-backup-pg-'));
  try {
    const env = { BASTION_DATABASE_URL: 'postgres://bastion@127.0.0.1:1/none' };
    const backup = cli(['backup', '--out', join(dir, 'x.bak'), '--data-dir', dir], env);
    assert.notEqual(backup.status, 0);
    assert.match(backup.stderr, /embedded store: on PostgreSQL back up with its own tools/);
    const restore = cli(['restore', '--from', join(dir, 'x.bak'), '--data-dir', join(dir, 'new')], env);
    assert.notEqual(restore.status, 0);
    assert.match(restore.stderr, /embedded store: on PostgreSQL/);
    assert.equal(readdirSync(dir).length, 0, 'nothing written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
