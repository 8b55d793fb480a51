import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type Config } from '../config/config.ts';
import { openKeys, storeFileKey } from '../main.ts';
import type { DataKeys } from '../crypto/data-keys.ts';
import { KeyProviderError, type WrappedKey } from '../crypto/key-provider.ts';
import { masterKeySource, openProvider, type KeyProviderSettings } from '../crypto/open-keys.ts';
import {
  ArchiveError, archiveFormat, defaultChunkSize, describeMember, extractArchive, readArchiveHeader, writeArchive,
  type ArchiveHeader, type MemberSink, type MemberSource, type OpenedArchive,
} from '../crypto/backup-archive.ts';
import { openEncrypted, type Db } from '../store/sqlite/open.ts';
import { snapshotFile, snapshotFolderPrefix } from '../store/sqlite/snapshot.ts';
import { auditHead } from '../store/sqlite/audit-schema.ts';
import { verifyAuditFile } from './audit.ts';
import { parse, UsageError } from './args.ts';
import { withAuthStore } from './auth-commands.ts';
import { syncDirectory } from '../crypto/durable-file.ts';

export const backupHelp = `Usage: bastion backup --out <file> [options]

Writes a consistent, encrypted backup of the data dir to one file, while the server runs (it need
not be stopped): a snapshot of the store, then of the users and clients, then of the audit trail
(so the trail covers every write in the store copy), and the data dir's key files.

The archive is encrypted (AES-256-GCM, in chunks, so any change, truncation or reordering is
detected) under a random archive key, which is wrapped by the data dir's key provider: restoring
needs the same master key (BASTION_MASTER_KEY / BASTION_MASTER_PASSPHRASE), Vault, KMS or HSM
key. The master key is never in the archive: keep it separately, as you keep the archive.

Options:
  --out <file>         the archive to write (must not exist)
  --data-dir <dir>     data directory (BASTION_DATA_DIR; default ./data)
  --config <file>      JSON config file (BASTION_CONFIG)
  -q, --quiet          no progress (there is none either when stderr is not a terminal)
  -h, --help           this help
`;

export const restoreHelp = `Usage: bastion restore --from <file> --data-dir <new dir> [options]

Restores a 'bastion backup' archive into a new (or empty) data dir, then checks it: every member's
SHA-256, the resource and version counts, the users and clients, and the audit trail's hash chain
and signed checkpoints. On any failure nothing is left behind.

The key provider must be configured as for the data dir the backup was taken from: the same
BASTION_MASTER_KEY or BASTION_MASTER_PASSPHRASE (local keyring), or the same keyProvider settings
and credentials (Vault Transit, AWS KMS, PKCS#11). A backup of a data dir that used the
development master.key needs a copy of that file: put it in the (otherwise empty) target dir
first, or set BASTION_MASTER_KEY to its content.

Options:
  --from <file>        the archive
  --data-dir <dir>     the data dir to create (must be new, or empty)
  --config <file>      JSON config file (BASTION_CONFIG), for keyProvider
  -q, --quiet          no progress (there is none either when stderr is not a terminal)
  -h, --help           this help
`;

/** The store files, in the order they are snapshotted: store, then auth, then the audit trail last. */
const sqliteMembers = ['bastion.db', 'bastion-auth.db', 'bastion-audit.db'] as const;
/** Key files as they are (data keys wrapped by the provider; JWK signing keys owner-only like the store). */
const keyMembers = ['data-keys.json', 'signing-keys.json', 'audit-signing-keys.json', 'provenance-signing-keys.json'] as const;
const keyringFile = 'keyring.json';
const alertsFile = 'alerts.ndjson';
/** Counts and the audit head the restore checks against, encrypted like the data (the header is readable by anyone). */
const manifestMember = 'manifest.json';
/** The only names a restore writes: a header naming anything else (`../x`) is refused. */
const restorable = new Set<string>([...sqliteMembers, ...keyMembers, keyringFile, alertsFile]);

/**
 * The clear header's own fields (beside the container's: src/crypto/backup-archive.ts). Nothing
 * here is secret or PHI: the archive key is wrapped, the keyring's KEKs are sealed under the master key.
 */
interface BackupHeader extends ArchiveHeader {
  /** Who wrapped the archive key: the source data dir's key provider (its KEK version). */
  keyProvider: { kind: string; kek: string };
  /** The archive key, wrapped by that provider, bound to `bastion:backup:<id>`. */
  archiveKey: WrappedKey;
  /**
   * Local keyring only: `keyring.json` as it was. The archive key is wrapped by one of its KEKs, so
   * the restore needs the keyring before it can decrypt anything; it is safe in the clear (it is
   * stored so in the data dir): its KEKs are sealed under the master key, which is not here.
   */
  keyring?: string;
  /** Local keyring only: where the source's master key came from (what to ask for when it is missing). */
  masterKey?: 'key' | 'passphrase' | 'file';
}

export interface BackupContents {
  /** Current resources (not deleted). */
  resources: number;
  /** Every version of every resource (history). */
  versions: number;
  users: number;
  clients: number;
  /** The audit trail's last record and its chain hash (hex). */
  audit: { records: number; head: string };
}

interface Manifest {
  format: 'bastion-backup-manifest/1';
  contents: BackupContents;
}

export interface BackupSummary {
  out: string;
  id: string;
  bytes: number;
  sha256: string;
  seconds: number;
  members: { name: string; size: number }[];
  contents: BackupContents;
  keyProvider: { kind: string; kek: string };
  masterKey?: 'key' | 'passphrase' | 'file';
  /** Things the operator must know (the development master key is not in the archive, ...). */
  warnings: string[];
}

export interface RestoreSummary {
  dataDir: string;
  id: string;
  created: string;
  bytes: number;
  seconds: number;
  members: { name: string; size: number }[];
  contents: BackupContents;
}

export class BackupError extends Error {}

const archiveKeyContext = (id: string) => `bastion:backup:${id}`;

export async function backupCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { out: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } });
  if (values.help) {
    process.stdout.write(backupHelp);
    return;
  }
  if (typeof values.out !== 'string' || values.out === '') throw new UsageError('backup needs --out <file>');
  const config = loadConfig({ dataDir: values['data-dir'] as string | undefined }, process.env, values.config as string | undefined);
  refuseDatabase(config, 'backup');
  const progress = progressLine(!values.quiet && process.stderr.isTTY === true);
  let summary: BackupSummary;
  try {
    summary = await backupDataDir({ dataDir: config.dataDir, out: values.out, keyProvider: config.keyProvider, progress });
  } finally {
    progress.done();
  }
  for (const warning of summary.warnings) process.stderr.write(`warning: ${warning}\n`);
  // Every copy of the PHI leaving the data dir is on the trail (handed to the running server, or appended).
  await withAuthStore(config, async (_auth, record) => record({ kind: 'backup', detail: backupDetail(summary.id, summary.contents, `archive-sha256=${summary.sha256}`) }));
  process.stdout.write(formatBackupSummary(summary));
}

/** The embedded store's files are what these commands copy; a PostgreSQL deployment has its own tools. */
function refuseDatabase(config: Pick<Config, 'database'>, command: string): void {
  if (config.database) {
    throw new UsageError(`bastion ${command} is for the embedded store: on PostgreSQL back up with its own tools (continuous archiving, pg_basebackup, pg_dump; see docs/deployment.md), and the data dir's key files separately`);
  }
}

export async function restoreCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { from: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } });
  if (values.help) {
    process.stdout.write(restoreHelp);
    return;
  }
  if (typeof values.from !== 'string' || values.from === '') throw new UsageError('restore needs --from <archive>');
  // Named, never defaulted: a restore creates a data dir, and should not guess where.
  if (typeof values['data-dir'] !== 'string' || values['data-dir'] === '') throw new UsageError('restore needs --data-dir <new dir>');
  const config = loadConfig({ dataDir: values['data-dir'] }, process.env, values.config as string | undefined);
  refuseDatabase(config, 'restore');
  const progress = progressLine(!values.quiet && process.stderr.isTTY === true);
  let summary: RestoreSummary;
  try {
    summary = await restoreDataDir({ from: values.from, dataDir: config.dataDir, keyProvider: config.keyProvider, progress });
  } finally {
    progress.done();
  }
  await withAuthStore(config, async (_auth, record) => record({ kind: 'restore', detail: backupDetail(summary.id, summary.contents, `created=${summary.created}`) }));
  process.stdout.write(formatRestoreSummary(summary));
}

/** What a backup or restore moved: the archive and counts, never content. */
function backupDetail(id: string, contents: BackupContents, extra: string): string {
  return `archive=${id} resources=${contents.resources} versions=${contents.versions} audit-records=${contents.audit.records} ${extra}`;
}

export interface Progress {
  (message: string): void;
  done(): void;
}

/**
 * Takes the backup: see backupHelp. The SQLite files are snapshotted with VACUUM INTO
 * (store/sqlite/snapshot.ts: consistent, online, and encrypted under the store-file key, so no
 * plaintext is ever written) into a scratch dir inside the data dir (owner-only, on the same
 * disk, holding nothing the data dir does not already hold), then sealed into the archive and removed.
 */
export async function backupDataDir(options: { dataDir: string; out: string; keyProvider: KeyProviderSettings; progress?: Progress }): Promise<BackupSummary> {
  const started = performance.now();
  const dataDir = resolve(options.dataDir);
  const out = resolve(options.out);
  const progress = options.progress ?? (() => undefined);
  if (!existsSync(join(dataDir, 'bastion.db'))) throw new BackupError(`no Bastion store in ${dataDir} (bastion.db)`);
  if (existsSync(out)) throw new BackupError(`${out} exists: name a new file (a backup never overwrites one)`);
  if (!existsSync(dirname(out))) throw new BackupError(`${dirname(out)} does not exist`);
  // The local keyring would make a new (wrong) master.key where there is none: say what is missing instead.
  if (options.keyProvider.kind === 'local' && masterKeySource(dataDir, process.env).kind === 'file' && !existsSync(join(dataDir, 'master.key'))) {
    throw new BackupError(`no master key for ${dataDir}: set BASTION_MASTER_KEY or BASTION_MASTER_PASSPHRASE as for its server`);
  }
  const keys = await openKeys(dataDir, options.keyProvider);
  const warnings: string[] = [];
  const partial = `${out}.${process.pid}.partial`;
  try {
    const id = randomUUID();
    const local = options.keyProvider.kind === 'local';
    // The data keys live before the snapshots: see keyFilesAfter.
    const liveBefore = liveDataKeys(readFileSync(join(dataDir, 'data-keys.json'), 'utf8'));
    const masterKey = local ? masterKeySource(dataDir, process.env).kind : undefined;
    if (masterKey === 'file') {
      warnings.push(`this data dir's master key is the development file ${join(dataDir, 'master.key')}. It is NOT in the archive, and the archive cannot be restored without it: keep a copy of it apart from the archive (or move to BASTION_MASTER_KEY).`);
    }

    const scratch = mkdtempSync(join(dataDir, snapshotFolderPrefix));
    try {
      const snapshots = await snapshotAll(dataDir, keys, scratch, progress, warnings);
      const { keyring, keySources } = keyFilesAfter(dataDir, local, liveBefore);
      const alerts = alertsSource(dataDir);
      const manifest: Manifest = { format: 'bastion-backup-manifest/1', contents: snapshots.contents };
      const sources: MemberSource[] = [
        { name: manifestMember, data: Buffer.from(JSON.stringify(manifest)) },
        ...snapshots.files.map((name) => ({ name, path: join(scratch, name), size: statSync(join(scratch, name)).size })),
        ...keySources,
        ...(alerts ? [alerts] : []),
      ];
      progress('checksums');
      const members = [];
      for (const source of sources) members.push(await describeMember(source));

      // A fresh random key for this archive only, wrapped by the data dir's own key provider:
      // restoring needs that provider (master key, Vault, KMS, HSM), never a key in the archive.
      const archiveKey = randomBytes(32);
      try {
        const wrapped = await keys.provider.wrap(archiveKey, archiveKeyContext(id));
        const header: BackupHeader = {
          format: archiveFormat, id, created: new Date().toISOString(), chunkSize: defaultChunkSize, members,
          keyProvider: { kind: keys.provider.kind, kek: wrapped.kek }, archiveKey: wrapped,
          ...(keyring !== undefined ? { keyring } : {}), ...(masterKey ? { masterKey } : {}),
        };
        const written = await writeArchive(partial, header, sources, archiveKey, (done, total) => progress(`encrypting ${percent(done, total)}`));
        renameSync(partial, out);
        syncDirectory(dirname(out));
        return {
          out, id, bytes: written.bytes, sha256: written.sha256, seconds: (performance.now() - started) / 1000,
          members: members.filter((m) => m.name !== manifestMember).map((m) => ({ name: m.name, size: m.size })),
          contents: snapshots.contents, keyProvider: header.keyProvider, ...(masterKey ? { masterKey } : {}), warnings,
        };
      } finally {
        archiveKey.fill(0);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  } finally {
    await keys.provider.close?.();
  }
}

/**
 * The key files, read once into memory after the snapshots. Keys are added while the server runs
 * (`bastion keys rotate`; the server then writes under the new version at once), so a key file
 * read before the snapshots could lack a version the snapshots use: read after, it has every
 * version added until then; data-keys.json before keyring.json, whose KEKs are only ever added, so
 * the keyring has every KEK the data keys are wrapped under. Versions are also retired while the
 * server runs (its re-encryption job, once nothing is encrypted under them any more): one live
 * before the snapshots and retired by now may still be needed by them, and then the backup is refused.
 */
function keyFilesAfter(dataDir: string, local: boolean, liveBefore: Set<string>): { keyring?: string; keySources: MemberSource[] } {
  const keySources: MemberSource[] = [];
  for (const name of keyMembers) {
    const path = join(dataDir, name);
    if (existsSync(path)) keySources.push({ name, data: readFileSync(path) });
  }
  const dataKeys = keySources.find((k) => k.name === 'data-keys.json');
  if (!dataKeys || !('data' in dataKeys)) throw new BackupError(`no data-keys.json in ${dataDir}`);
  const liveAfter = liveDataKeys(dataKeys.data.toString('utf8'));
  const retired = [...liveBefore].filter((id) => !liveAfter.has(id));
  if (retired.length > 0) throw new BackupError(`data key ${retired.join(', ')} was retired while the backup ran (re-encryption finished meanwhile); no backup written: run it again`);
  const keyringPath = join(dataDir, keyringFile);
  if (local) return { keyring: readFileSync(keyringPath, 'utf8'), keySources };
  if (existsSync(keyringPath)) keySources.push({ name: keyringFile, data: readFileSync(keyringPath) });
  return { keySources };
}

/** The ids (`resource-body.2`) of the data key versions not retired, from data-keys.json's text. */
function liveDataKeys(text: string): Set<string> {
  const file = JSON.parse(text) as { keys?: Record<string, { version: number; retired?: string }[]> };
  const live = new Set<string>();
  for (const [purpose, versions] of Object.entries(file.keys ?? {})) for (const v of versions) if (!v.retired) live.add(`${purpose}.${v.version}`);
  return live;
}

/**
 * Snapshots the store, then the auth file, then the audit file. The server appends a write's
 * audit record after the write commits (batched, within tens of milliseconds), so the audit copy
 * is taken after the store copy, once the live trail names every version the store copy got in
 * the seconds before it was taken (waiting for it a few seconds at most), and the copy is checked
 * for them again. Writes older than that window were audited long before. Should the trail not
 * catch up, the backup still completes but says so (the server's audit pipeline is lagging or
 * failing: see its log).
 */
async function snapshotAll(dataDir: string, keys: DataKeys, scratch: string, progress: (m: string) => void, warnings: string[]): Promise<{ files: string[]; contents: BackupContents }> {
  const files: string[] = [];
  const snapshot = (name: (typeof sqliteMembers)[number]) => {
    const source = join(dataDir, name);
    if (!existsSync(source)) return undefined;
    progress(`snapshot ${name}`);
    const key = storeFileKey(dataDir, keys, name);
    snapshotFile(source, key, join(scratch, name));
    files.push(name);
    return openEncrypted(join(scratch, name), key, { readonly: true });
  };

  const storeTaken = Date.now();
  const store = snapshot('bastion.db')!;
  let counts: Pick<BackupContents, 'resources' | 'versions'>;
  let recent: Set<string>;
  try {
    counts = {
      resources: count(store, 'SELECT count(*) FROM resources WHERE deleted = 0'),
      versions: count(store, 'SELECT count(*) FROM resource_versions'),
    };
    recent = recentVersions(store, new Date(storeTaken - coverageWindowMs).toISOString());
  } finally {
    store.close();
  }

  const auth = snapshot('bastion-auth.db');
  let users = 0;
  let clients = 0;
  if (auth) {
    try {
      users = count(auth, 'SELECT count(*) FROM users');
      clients = count(auth, 'SELECT count(*) FROM clients');
    } finally {
      auth.close();
    }
  }

  let audit = { records: 0, head: '' };
  const auditPath = join(dataDir, 'bastion-audit.db');
  if (existsSync(auditPath)) {
    const since = new Date(storeTaken - 2 * coverageWindowMs).toISOString();
    // Wait (briefly) on the live trail, read-only, until it names the store copy's recent writes.
    progress('waiting for the audit trail to cover the store copy');
    const live = openEncrypted(auditPath, storeFileKey(dataDir, keys, 'bastion-audit.db'), { readonly: true });
    try {
      for (let attempt = 1; uncovered(live, recent, since) > 0 && attempt < coverageAttempts; attempt++) await sleep(coverageRetryMs);
    } finally {
      live.close();
    }
    const trail = snapshot('bastion-audit.db')!;
    try {
      const head = auditHead(trail);
      audit = { records: head.count, head: head.head.toString('hex') };
      const missing = uncovered(trail, recent, since);
      if (missing > 0) {
        warnings.push(`${missing} write(s) in the store copy made just before the backup have no record in the audit trail copy: the server's audit trail is lagging or failing (see its log)`);
      }
    } finally {
      trail.close();
    }
  }
  return { files, contents: { ...counts, users, clients, audit } };
}

/** How far back before the store snapshot writes are checked for their audit record. */
const coverageWindowMs = 5_000;
const coverageAttempts = 20;
const coverageRetryMs = 250;

/** `Type/id/_history/n` of the versions written since `since` (as the audit trail names them). */
function recentVersions(db: Db, since: string): Set<string> {
  const rows = db.prepare<[string], { type: string; id: string; version: number }>(
    'SELECT r.type, r.id, v.version FROM resource_versions v JOIN resources r ON r.rid = v.rid WHERE v.last_updated >= ?',
  ).all(since);
  return new Set(rows.map((r) => `${r.type}/${r.id}/_history/${r.version}`));
}

/** How many of `wanted` no audit record since `since` names. */
function uncovered(db: Db, wanted: Set<string>, since: string): number {
  if (wanted.size === 0) return 0;
  const left = new Set(wanted);
  for (const row of db.prepare<[string], { event: string }>('SELECT event FROM audit_log WHERE recorded >= ?').iterate(since)) {
    let what: unknown;
    try {
      what = (JSON.parse(row.event) as { what?: unknown }).what;
    } catch {
      continue;
    }
    if (Array.isArray(what)) for (const w of what) if (typeof w === 'string') left.delete(w);
    if (left.size === 0) return 0;
  }
  return left.size;
}

function count(db: Db, sql: string): number {
  return db.prepare(sql).pluck().get() as number;
}

/**
 * alerts.ndjson is appended to while the server runs: the archive takes the whole lines there are
 * now (a line being written is left out), read from the file itself (appends do not change them).
 */
function alertsSource(dataDir: string): MemberSource | undefined {
  const path = join(dataDir, alertsFile);
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, 'r');
  try {
    let size = statSync(path).size;
    const tail = Buffer.alloc(64 * 1024);
    while (size > 0) {
      const from = Math.max(0, size - tail.length);
      const n = readSync(fd, tail, 0, size - from, from);
      const newline = tail.subarray(0, n).lastIndexOf(0x0a);
      if (newline >= 0) {
        size = from + newline + 1;
        break;
      }
      size = from;
    }
    return { name: alertsFile, path, size };
  } finally {
    closeSync(fd);
  }
}

/**
 * Restores an archive into a new data dir: see restoreHelp.
 *
 * The order is forced by the key question: the archive key is wrapped by the source's key
 * provider, so that provider is opened first, from the configuration and environment (the master
 * key, Vault, KMS, HSM), before anything is decrypted. For the local keyring its KEKs are in
 * keyring.json, which the header carries as it was (sealed under the master key; see
 * BackupHeader.keyring): it is written into the new dir and opened with the master key given,
 * exactly as the server will open it. A wrong master key stops the restore here, before any
 * member is decrypted. Then each member is decrypted chunk by chunk (only authenticated bytes are
 * written), its SHA-256 checked, and the result opened and checked as a data dir.
 */
export async function restoreDataDir(options: { from: string; dataDir: string; keyProvider: KeyProviderSettings; progress?: Progress }): Promise<RestoreSummary> {
  const started = performance.now();
  const from = resolve(options.from);
  const dir = resolve(options.dataDir);
  const progress = options.progress ?? (() => undefined);
  let target: { undo: () => void } | undefined;
  let member: FileHandle | undefined;
  try {
    const archive = await readArchiveHeader(from) as OpenedArchive<BackupHeader>;
    const header = archive.header;
    checkBackupHeader(header, from);
    if (header.keyProvider.kind !== options.keyProvider.kind) {
      throw new BackupError(`the archive key was wrapped by the ${header.keyProvider.kind} key provider; this configuration uses ${options.keyProvider.kind}: configure keyProvider as for the data dir the backup was taken from`);
    }
    target = prepareTarget(dir);

    // 1. The key provider, then the archive key.
    if (header.keyring !== undefined) {
      writeFileSync(join(dir, keyringFile), header.keyring, { mode: 0o600, flag: 'wx' });
      // The local keyring makes a new master.key when there is none: never here, it would be the wrong one.
      if (masterKeySource(dir, process.env).kind === 'file' && !existsSync(join(dir, 'master.key'))) throw new BackupError(masterKeyMissing(header, dir));
    }
    let archiveKey: Buffer;
    try {
      const provider = await openProvider(dir, options.keyProvider);
      try {
        archiveKey = await provider.unwrap(header.archiveKey, archiveKeyContext(header.id));
      } finally {
        await provider.close?.();
      }
    } catch (err) {
      // The keyring's path is the new dir's: name it as what it is, the archive's.
      if (err instanceof KeyProviderError) throw new BackupError(`the archive key cannot be unwrapped: ${err.message.replaceAll(join(dir, keyringFile), 'the archive\'s keyring')}`);
      throw err;
    }

    // 2. The members: only chunks that authenticated are written.
    const manifestBytes: Buffer[] = [];
    try {
      await extractArchive(archive, archiveKey, async (m): Promise<MemberSink> => {
        if (m.name === manifestMember) return { write: async (b) => void manifestBytes.push(Buffer.from(b)), finish: async () => undefined };
        const file = await open(join(dir, m.name), 'wx', 0o600);
        member = file;
        return {
          write: async (b) => void await file.write(b),
          finish: async () => {
            await file.sync();
            await file.close();
            member = undefined;
          },
        };
      }, (done, total) => progress(`decrypting ${percent(done, total)}`));
    } finally {
      archiveKey.fill(0);
    }
    syncDirectory(dir);
    const manifest = JSON.parse(Buffer.concat(manifestBytes).toString('utf8')) as Manifest;
    if (manifest.format !== 'bastion-backup-manifest/1') throw new BackupError(`${from}: unknown manifest format`);

    // 3. The restored data dir, opened and checked as the server will open it.
    progress('checking');
    const contents = await checkRestored(dir, options.keyProvider, manifest.contents);
    return {
      dataDir: dir, id: header.id, created: header.created, bytes: statSync(from).size, seconds: (performance.now() - started) / 1000,
      members: [
        ...(header.keyring !== undefined ? [{ name: keyringFile, size: Buffer.byteLength(header.keyring) }] : []),
        ...header.members.filter((m) => m.name !== manifestMember).map((m) => ({ name: m.name, size: m.size })),
      ],
      contents,
    };
  } catch (err) {
    await (member as FileHandle | undefined)?.close().catch(() => undefined);
    (target as { undo: () => void } | undefined)?.undo();
    throw new BackupError(`restore refused, nothing restored: ${(err as Error).message}`);
  }
}

/** What the archive promised, against what the restored files hold. */
async function checkRestored(dir: string, keyProvider: KeyProviderSettings, expected: BackupContents): Promise<BackupContents> {
  const keys = await openKeys(dir, keyProvider);
  const found: BackupContents = { resources: 0, versions: 0, users: 0, clients: 0, audit: { records: 0, head: '' } };
  try {
    for (const name of sqliteMembers) {
      if (!existsSync(join(dir, name))) continue;
      const db = openEncrypted(join(dir, name), storeFileKey(dir, keys, name), { readonly: true });
      try {
        const check = db.pragma('quick_check', { simple: true });
        if (check !== 'ok') throw new BackupError(`the restored ${name} is damaged: ${String(check)}`);
        if (name === 'bastion.db') {
          found.resources = count(db, 'SELECT count(*) FROM resources WHERE deleted = 0');
          found.versions = count(db, 'SELECT count(*) FROM resource_versions');
        } else if (name === 'bastion-auth.db') {
          found.users = count(db, 'SELECT count(*) FROM users');
          found.clients = count(db, 'SELECT count(*) FROM clients');
        }
      } finally {
        db.close();
      }
    }
  } finally {
    await keys.provider.close?.();
  }
  if (existsSync(join(dir, 'bastion-audit.db'))) {
    const verdict = await verifyAuditFile(dir, keyProvider);
    if (!verdict.ok) throw new BackupError(`the restored audit trail does not verify: broken at record ${verdict.seq} (${verdict.problem}: ${verdict.detail})`);
    found.audit = { records: verdict.count, head: verdict.head };
  }
  for (const [what, a, b] of [
    ['resources', found.resources, expected.resources], ['versions', found.versions, expected.versions],
    ['users', found.users, expected.users], ['clients', found.clients, expected.clients],
    ['audit records', found.audit.records, expected.audit.records],
  ] as const) {
    if (a !== b) throw new BackupError(`the restored store holds ${a} ${what}; the backup had ${b}`);
  }
  if (found.audit.head !== expected.audit.head) throw new BackupError('the restored audit trail does not end in the head the backup recorded');
  return found;
}

function checkBackupHeader(header: BackupHeader, path: string): void {
  const bad = (what: string) => new ArchiveError(`${path}: the archive header is damaged (${what})`);
  for (const m of header.members) {
    if (m.name !== manifestMember && !restorable.has(m.name)) throw bad(`unknown member ${JSON.stringify(m.name)}`);
  }
  const names = new Set(header.members.map((m) => m.name));
  for (const required of [manifestMember, 'bastion.db', 'data-keys.json']) if (!names.has(required)) throw bad(`no ${required}`);
  if (typeof header.keyProvider?.kind !== 'string' || typeof header.keyProvider.kek !== 'string') throw bad('keyProvider');
  const w = header.archiveKey;
  if (typeof w?.provider !== 'string' || typeof w.kek !== 'string' || typeof w.ciphertext !== 'string') throw bad('archiveKey');
  if (header.keyProvider.kind === 'local' && typeof header.keyring !== 'string') throw bad('no keyring for the local key provider');
  if (header.keyProvider.kind !== 'local' && header.keyring !== undefined) throw bad('a keyring with a non-local key provider');
}

function masterKeyMissing(header: BackupHeader, dir: string): string {
  let kdf: string | undefined;
  try {
    kdf = (JSON.parse(header.keyring!) as { master?: { kdf?: string } }).master?.kdf;
  } catch {
    kdf = undefined;
  }
  if (kdf === 'scrypt') return 'the archive\'s keyring is sealed under a passphrase: set BASTION_MASTER_PASSPHRASE as for the data dir the backup was taken from';
  const source = header.masterKey === 'file'
    ? `the data dir it was taken from used the development master.key: copy that file into ${dir} (otherwise empty) first, or set BASTION_MASTER_KEY to its content`
    : 'set BASTION_MASTER_KEY as for the data dir the backup was taken from';
  return `the archive's keyring is sealed under a master key that is not given: ${source}`;
}

/**
 * The target dir: new, or empty but for a master.key put there for the restore. Made owner-only.
 * `undo` removes what the restore made (the dir itself when it made it), never what was there.
 */
function prepareTarget(dir: string): { undo: () => void } {
  process.umask(0o077);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new BackupError(`${dir} exists and is not a directory`);
    const present = readdirSync(dir);
    const foreign = present.filter((f) => f !== 'master.key');
    if (foreign.length > 0) throw new BackupError(`${dir} is not empty (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}): restore only into a new or empty directory`);
    chmodSync(dir, 0o700);
    const kept = new Set(present);
    return { undo: () => { for (const f of readdirSync(dir)) if (!kept.has(f)) rmSync(join(dir, f), { recursive: true, force: true }); } };
  }
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 }) ?? dir;
  return { undo: () => rmSync(created, { recursive: true, force: true }) };
}

function percent(done: number, total: number): string {
  return `${total === 0 ? 100 : Math.floor((done / total) * 100)}% of ${mib(total)}`;
}

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** One progress line on stderr, rewritten in place, at most ten times a second (nothing when off). */
function progressLine(on: boolean): Progress {
  let last = 0;
  let shown = false;
  const progress = ((message: string) => {
    if (!on) return;
    const now = Date.now();
    if (now - last < 100 && !/^(snapshot|checksums|checking|waiting)/.test(message)) return;
    last = now;
    shown = true;
    process.stderr.write(`\r\x1b[K${message}`);
  }) as Progress;
  progress.done = () => {
    if (shown) process.stderr.write('\r\x1b[K');
    shown = false;
  };
  return progress;
}

const n = (x: number) => x.toLocaleString('en-US');

export function formatBackupSummary(s: BackupSummary): string {
  const width = Math.max(...s.members.map((m) => m.name.length));
  const lines = [
    `backup written: ${s.out}`,
    `  archive ${s.id}, ${mib(s.bytes)}, sha256 ${s.sha256}, in ${s.seconds.toFixed(1)} s`,
    ...s.members.map((m) => `  ${m.name.padEnd(width)}  ${mib(m.size).padStart(11)}`),
    `  store: ${n(s.contents.resources)} resources (${n(s.contents.versions)} versions); auth: ${n(s.contents.users)} users, ${n(s.contents.clients)} clients; audit trail: ${n(s.contents.audit.records)} records (head seq ${n(s.contents.audit.records)})`,
    s.keyProvider.kind === 'local'
      ? `The archive key is wrapped by the local keyring (${s.keyProvider.kek}) under the master key${s.masterKey === 'key' ? ' (BASTION_MASTER_KEY)' : s.masterKey === 'passphrase' ? ' (BASTION_MASTER_PASSPHRASE)' : ' (master.key)'}. The master key is not in the archive: keep it separately; restoring needs it.`
      : `The archive key is wrapped by ${s.keyProvider.kind} (${s.keyProvider.kek}); restoring needs that key provider and key. No key to open the archive is in it.`,
  ];
  return lines.join('\n') + '\n';
}

export function formatRestoreSummary(s: RestoreSummary): string {
  const total = s.members.reduce((t, m) => t + m.size, 0);
  return [
    `restored ${s.members.length} files (${mib(total)}) into ${s.dataDir} in ${s.seconds.toFixed(1)} s`,
    `  from archive ${s.id}, taken ${s.created}: the data as it was then (anything written after is not in it)`,
    `  store: ${n(s.contents.resources)} resources (${n(s.contents.versions)} versions); auth: ${n(s.contents.users)} users, ${n(s.contents.clients)} clients`,
    `  audit trail: chain and signed checkpoints intact, ${n(s.contents.audit.records)} records (head seq ${n(s.contents.audit.records)})`,
  ].join('\n') + '\n';
}
