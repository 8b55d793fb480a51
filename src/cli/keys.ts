import { loadConfig, type Config } from '../config/config.ts';
import { keyPurposes, type DataKeys, type KeyPurpose } from '../crypto/data-keys.ts';
import { openKeys, openStore, rekeyStoreFiles } from '../main.ts';
import { parse, UsageError } from './args.ts';
import { serverRunning } from './exclusive.ts';
import { withAuthStore, type ConsoleEvent } from './auth-commands.ts';
import { AuditLog } from '../audit/audit-log.ts';
import { atRestMismatch, completedAsText } from '../jobs/reencryption.ts';
import { authEventFacts, consoleActor } from '../auth/auth-events.ts';
import { keyAgeFindings } from '../compliance/key-age.ts';
import { LocalKeyring, parseMasterKey } from '../crypto/providers/local-keyring.ts';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const keysHelp = `Usage: bastion keys status|rotate|change-master [options]

  status    the key provider, its key-encryption key (KEK) versions and every data key's current
            version with its age (keys older than 90 days are flagged: HIPAA programs rotate quarterly),
            and how many stored versions are not yet under the current keys
  rotate    a new KEK version (the data keys are re-wrapped under it) and new versions of the
            data keys; earlier versions keep decrypting until nothing uses them. With the server
            stopped, the store files are re-keyed and the stored versions re-encrypted now (with
            progress); while it runs, it takes the new keys within seconds, re-encrypts in the
            background, and re-keys the store files at its next start. Every step is audited.
  change-master
            (local keyring) seals keyring.json under a new master key, given as
            BASTION_NEW_MASTER_KEY or BASTION_NEW_MASTER_PASSPHRASE; a development master.key
            is then removed. Start the server with BASTION_MASTER_KEY / _PASSPHRASE set to it.

Options (rotate):
  --kek-only            only the KEK (re-wraps the data keys; no data is re-encrypted)
  --purpose <p>         (repeatable) only these data keys: ${keyPurposes.join(', ')}
                        (default: store-file, resource-body, identifier and the KEK; blind-index
                        re-indexes everything and needs the server stopped; rotating cookie ends
                        every sign-in session; pseudonym changes every researcher pseudonym)
  --data-dir <dir>      data directory (BASTION_DATA_DIR; default ./data)
  --config <file>       JSON config file (BASTION_CONFIG)
  -h, --help            this help
`;

const defaultPurposes: KeyPurpose[] = ['store-file', 'resource-body', 'identifier'];

export async function keysCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(keysHelp);
    if (!sub) throw new UsageError('keys needs a subcommand: status or rotate');
    return;
  }
  const { values } = parse(rest, {
    'kek-only': { type: 'boolean' }, purpose: { type: 'string', multiple: true }, 'data-dir': { type: 'string' }, config: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(keysHelp);
    return;
  }
  const config = loadConfig({ dataDir: values['data-dir'] as string | undefined }, process.env, values.config as string | undefined);
  if (sub === 'status') return status(config);
  if (sub === 'change-master') return changeMaster(config);
  if (sub !== 'rotate') throw new UsageError(`keys ${sub}: not a subcommand (status, rotate, change-master)`);
  const purposes = purposesOf(values.purpose as unknown as string[] | undefined, values['kek-only'] === true);
  await rotate(config, purposes.kek, purposes.data);
}

function purposesOf(asked: string[] | undefined, kekOnly: boolean): { kek: boolean; data: KeyPurpose[] } {
  if (kekOnly) {
    if (asked) throw new UsageError('--kek-only and --purpose do not go together');
    return { kek: true, data: [] };
  }
  if (!asked) return { kek: true, data: defaultPurposes };
  for (const p of asked) if (!(keyPurposes as readonly string[]).includes(p)) throw new UsageError(`--purpose ${p}: not one of ${keyPurposes.join(', ')}`);
  return { kek: false, data: [...new Set(asked)] as KeyPurpose[] };
}

async function rotate(config: Config, kek: boolean, purposes: KeyPurpose[]): Promise<void> {
  // The console's audit records are written with the same keys once the work is done: one DataKeys throughout.
  const offline = await withAuthStore(config, async (_auth, record, keys) => {
    const running = serverRunning(config.dataDir, keys);
    const mismatch = running ? undefined : atRestMismatch(config.dataDir, config);
    if (mismatch && purposes.some((p) => p === 'resource-body' || p === 'identifier' || p === 'blind-index')) throw new UsageError(`refusing to re-encrypt: ${mismatch}`);
    if (running && purposes.includes('blind-index')) throw new UsageError('rotating the blind-index key re-indexes every resource: stop the server first');
    // On PostgreSQL the auth tables find users and sessions by MACs under that key too: a new one would find none of them.
    if (config.database && purposes.includes('blind-index')) throw new UsageError('rotating the blind-index key is not supported on PostgreSQL yet: the authorization tables are keyed by it');
    if (kek) {
      const version = await keys.provider.rotate();
      const count = await keys.rewrap();
      record({ kind: 'key-rotated', detail: `key=kek provider=${keys.provider.kind} version=${version.id}` });
      record({ kind: 'keys-rewrapped', detail: `count=${count} kek=${version.id}` });
      say(`KEK rotated to ${version.id}; ${count} data keys re-wrapped under it`);
    }
    for (const purpose of purposes) {
      const key = await keys.rotate(purpose);
      record({ kind: 'key-rotated', detail: `key=${key.id}` });
      say(`data key ${purpose} rotated to ${key.id}`);
    }
    if (running) {
      say('the running server takes the new keys within seconds and re-encrypts in the background; it re-keys the store files at its next start');
      return undefined;
    }
    return keys;
  });
  // With the auth file closed again: re-keying needs every store file closed.
  if (offline) await applyNow(config, offline, purposes);
}

/** With the server stopped: re-key the files, re-encrypt and re-index now, then retire what nothing uses. */
async function applyNow(config: Config, keys: DataKeys, purposes: KeyPurpose[]): Promise<void> {
  const events: ConsoleEvent[] = [];
  const record = (event: ConsoleEvent) => events.push(event);
  if (purposes.includes('store-file')) {
    const files = rekeyStoreFiles(config.dataDir, keys);
    if (files.length > 0) record({ kind: 'store-rekeyed', detail: `files=${files.join(',')} key=${keys.current('store-file').id}` });
    await retireAllBut(keys, 'store-file', record, 'store-files-rekeyed');
    say(`store files re-keyed: ${files.join(', ') || 'none yet'}`);
  }
  const rewrite = purposes.filter((p) => p === 'resource-body' || p === 'identifier');
  const store = await openStore(config.dataDir, keys, config);
  try {
    // Re-encrypting with sealing off would unseal every body: only when the server is configured so too.
    if (rewrite.length > 0 && !config.encryptResourceBodies && await store.holdsSealedBodies?.() && !completedAsText(config.dataDir)) {
      throw new UsageError('refusing to re-encrypt: the stored bodies are sealed and this configuration does not seal them (encryptResourceBodies=false); run with the server\'s configuration. The keys are rotated; the server re-encrypts at its next start');
    }
    if (rewrite.length > 0 && store.reencrypt) {
      const started = performance.now();
      const tty = process.stderr.isTTY === true;
      const done = await store.reencrypt((p) => {
        if (tty) process.stderr.write(`\r\x1b[Kre-encrypting: ${p.examined.toLocaleString('en-US')} of ${p.total.toLocaleString('en-US')} versions`);
      });
      if (tty) process.stderr.write('\r\x1b[K');
      const seconds = (performance.now() - started) / 1000;
      record({ kind: 'reencrypted', detail: `examined=${done.examined} rewritten=${done.rewritten} unreadable=${done.unreadable}` });
      say(`re-encrypted ${done.rewritten.toLocaleString('en-US')} of ${done.examined.toLocaleString('en-US')} versions in ${seconds.toFixed(1)} s`);
      if (done.unreadable > 0) say(`${done.unreadable} stored versions do not decrypt (altered?): the older keys are kept`);
      else for (const purpose of rewrite) await retireAllBut(keys, purpose, record, 'nothing-encrypted-under-it');
    }
    if (purposes.includes('blind-index')) {
      const n = await store.reindex();
      await retireAllBut(keys, 'blind-index', record, 'reindexed');
      say(`re-indexed ${n.toLocaleString('en-US')} resources under the new blind-index key`);
    }
    // The server is stopped: the console appends its records to the trail itself.
    const trail = new AuditLog(store, (err) => process.stderr.write(`audit record not written: ${(err as Error).message}\n`));
    for (const event of events) trail.record(authEventFacts({ ...consoleActor, success: true, ...event }));
    await trail.close();
  } finally {
    await store.close();
  }
}

async function retireAllBut(keys: DataKeys, purpose: KeyPurpose, record: (event: ConsoleEvent) => void, reason: string): Promise<void> {
  for (const id of await keys.retireSuperseded(purpose)) record({ kind: 'key-retired', detail: `key=${id} reason=${reason}` });
}

async function status(config: Config): Promise<void> {
  const keys = await openKeys(config.dataDir, config.keyProvider);
  const kek = await keys.provider.versions();
  say(`key provider: ${keys.provider.kind}`);
  for (const v of kek) say(`  KEK ${v.id}${v.current ? ' (current)' : ''} created ${v.created}`);
  say('data keys (current version):');
  for (const a of keys.ages()) say(`  ${a.purpose.padEnd(14)} ${a.id.padEnd(18)} created ${a.created}   live versions: ${keys.liveIds(a.purpose).join(', ')}`);
  for (const finding of keyAgeFindings(kek, keys.ages())) say(`! ${finding.message}`);
  if (!serverRunning(config.dataDir, keys)) {
    const store = await openStore(config.dataDir, keys, config);
    try {
      if (store.staleCount) say(`stored versions not under the current keys: ${(await store.staleCount()).toLocaleString('en-US')}`);
    } finally {
      await store.close();
    }
  } else {
    say('the server is running: its log reports the re-encryption progress');
  }
}

async function changeMaster(config: Config): Promise<void> {
  const next = process.env.BASTION_NEW_MASTER_KEY
    ? { kind: 'key' as const, key: parseMasterKey(process.env.BASTION_NEW_MASTER_KEY), origin: 'BASTION_NEW_MASTER_KEY' }
    : process.env.BASTION_NEW_MASTER_PASSPHRASE && process.env.BASTION_NEW_MASTER_PASSPHRASE.length >= 12
      ? { kind: 'passphrase' as const, passphrase: process.env.BASTION_NEW_MASTER_PASSPHRASE }
      : undefined;
  if (!next) throw new UsageError('change-master needs BASTION_NEW_MASTER_KEY (32 bytes, hex or base64) or BASTION_NEW_MASTER_PASSPHRASE (12 characters at least)');
  await withAuthStore(config, async (_auth, record, keys) => {
    if (!(keys.provider instanceof LocalKeyring)) throw new UsageError(`change-master is for the local keyring; the ${keys.provider.kind} provider keeps its own keys`);
    const before = keys.provider.masterKeySource;
    keys.provider.changeMaster(next);
    const devFile = join(config.dataDir, 'master.key');
    if (before === 'file' && existsSync(devFile)) {
      writeFileSync(devFile, '0'.repeat(64) + '\n');
      rmSync(devFile);
    }
    record({ kind: 'key-rotated', detail: `key=master from=${before} to=${next.kind}` });
    say(`keyring.json is sealed under the new master key; start the server with ${next.kind === 'key' ? 'BASTION_MASTER_KEY' : 'BASTION_MASTER_PASSPHRASE'} set to it`);
  });
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}
