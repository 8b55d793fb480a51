import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { openStore } from '../../src/main.ts';
import type { Store } from '../../src/store/store.ts';
import { importFiles, type ImportOptions } from '../../src/jobs/import/importer.ts';
import { formatSummary, totalResources, type ImportReport } from '../../src/jobs/import/report.ts';
import { findMatches } from '../../src/rest/conditional.ts';
import { auditEventsIn } from '../audit/audit-file.ts';
import { syntheaBundles, syntheaNdjson } from '../shared-data.ts';

type Json = Record<string, any>;

const bin = new URL('../../bin/bastion.js', import.meta.url).pathname;

/** A fresh data dir and its store for one group of tests. */
function useStore() {
  const t = {} as { dir: string; store: Store; config: Config; run(paths: string[], options?: Partial<ImportOptions>): Promise<ImportReport> };
  before(async () => {
    t.dir = mkdtempSync(join(tmpdir(), 'bastion-import-'));
    t.config = loadConfig({ dataDir: t.dir }, {});
    t.store = await openStore(t.dir);
    t.run = (paths, options = {}) => importFiles(paths, { store: t.store, config: t.config, ...options });
  });
  after(async () => {
    await t.store.close();
    rmSync(t.dir, { recursive: true, force: true });
  });
  return t;
}

/** The resource as the client sent it: without what the server owns (meta.versionId, meta.lastUpdated). */
function clientView(r: Json): Json {
  const { meta, ...rest } = r;
  if (!meta) return rest;
  const { versionId: _v, lastUpdated: _l, ...m } = meta;
  return Object.keys(m).length > 0 ? { ...rest, meta: m } : rest;
}

/** Every `reference` in a resource, at any depth. */
function references(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const x of node) references(x, out);
  else if (node && typeof node === 'object') {
    const o = node as Json;
    if (typeof o.reference === 'string') out.push(o.reference);
    for (const v of Object.values(o)) references(v, out);
  }
  return out;
}

/** Replaces references (deep copy) through `map`; unknown ones stay. */
function mapReferences(r: Json, map: (ref: string) => string | undefined): Json {
  const copy = structuredClone(r);
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const o = node as Json;
      if (typeof o.reference === 'string') o.reference = map(o.reference) ?? o.reference;
      Object.values(o).forEach(walk);
    }
  };
  walk(copy);
  return copy;
}

async function readJson(store: Store, type: string, id: string): Promise<Json | undefined> {
  const s = await store.read(type, id);
  return s && !s.deleted && s.json ? (JSON.parse(s.json) as Json) : undefined;
}

async function versionsStored(store: Store): Promise<number> {
  return (await store.history({ count: 1, offset: 0 })).total;
}

/** Every current resource in the store. */
async function allResources(store: Store): Promise<Json[]> {
  const page = await store.history({ count: 1_000_000, offset: 0 });
  const current = new Map<string, Json>();
  for (const e of page.entries) {
    const key = `${e.resourceType}/${e.id}`;
    if (current.has(key) || e.deleted || !e.json) continue;
    const now = await store.read(e.resourceType, e.id);
    if (now && !now.deleted && now.json) current.set(key, JSON.parse(now.json) as Json);
  }
  return [...current.values()];
}

/** Every literal reference in the store names a resource that reads back (contained `#x` aside). */
async function assertAllReferencesResolve(store: Store): Promise<number> {
  let checked = 0;
  const known = new Set<string>();
  for (const r of await allResources(store)) {
    for (const ref of references(r)) {
      if (ref.startsWith('#')) continue;
      assert.match(ref, /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[0-9]+)?$/, `${r.resourceType}/${r.id} has the unresolved reference ${ref}`);
      if (!known.has(ref)) {
        const [type, id, , version] = ref.split('/');
        // A Provenance names the version it is about.
        const found = version ? await store.vread(type, id, version) : await readJson(store, type, id);
        assert.ok(found, `${r.resourceType}/${r.id} references ${ref}, which does not read back`);
        known.add(ref);
      }
      checked++;
    }
  }
  return checked;
}

/** The AuditEvents the pipeline appended, read from the store file as the audit tests do. */
async function auditEvents(dir: string): Promise<Json[]> {
  return (await auditEventsIn(dir)) as Json[];
}

function ndjsonLines(file: string): Json[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Json);
}

function created(report: ImportReport): Record<string, number> {
  return Object.fromEntries(Object.entries(report.byType).map(([t, c]) => [t, c.created]));
}

function assertNothingChanged(report: ImportReport): void {
  for (const [type, c] of Object.entries(report.byType)) {
    assert.equal(c.created, 0, `${type} created on a re-run`);
    assert.equal(c.updated, 0, `${type} updated on a re-run`);
  }
}

describe('bulk NDJSON: the whole Synthea 10-patient export', () => {
  const t = useStore();
  const files = readdirSync(syntheaNdjson).filter((f) => f.endsWith('.ndjson') && f !== 'log.ndjson').sort();
  const lines = new Map(files.map((f) => [f, ndjsonLines(join(syntheaNdjson, f))]));
  let report: ImportReport;

  before(async () => {
    report = await t.run([syntheaNdjson]);
  });

  test('imports without errors; log.ndjson (not FHIR) is skipped, not an error', () => {
    assert.deepEqual(report.errors, [], formatSummary(report));
    assert.deepEqual(report.skipped.map((s) => s.file), [join(syntheaNdjson, 'log.ndjson')]);
    assert.equal(report.files, files.length);
  });

  test('every line is created, counted under its type', () => {
    const expected: Record<string, number> = {};
    for (const rs of lines.values()) for (const r of rs) expected[r.resourceType] = (expected[r.resourceType] ?? 0) + 1;
    assert.deepEqual(created(report), expected);
    assert.equal(totalResources(report), 7160);
  });

  test('every resource reads back equal under its own id; conditional references now name the one match', async () => {
    // The targets, found independently of the importer: identifier system|value -> Type/id.
    const byIdentifier = new Map<string, string>();
    for (const rs of lines.values()) {
      for (const r of rs) {
        for (const i of (r.identifier ?? []) as Json[]) {
          const key = `${r.resourceType}?identifier=${i.system}|${i.value}`;
          assert.ok(!byIdentifier.has(key) || byIdentifier.get(key) === `${r.resourceType}/${r.id}`, `${key} is ambiguous`);
          byIdentifier.set(key, `${r.resourceType}/${r.id}`);
        }
      }
    }
    let conditional = 0;
    for (const [file, rs] of lines) {
      for (const r of rs) {
        const stored = await readJson(t.store, r.resourceType, r.id);
        assert.ok(stored, `${file}: ${r.resourceType}/${r.id} is not stored`);
        assert.equal(stored.meta.versionId, '1');
        const expected = mapReferences(r, (ref) => {
          if (!ref.includes('?')) return undefined;
          conditional++;
          assert.ok(byIdentifier.has(ref), `${ref} has no target in the set`);
          return byIdentifier.get(ref);
        });
        assert.deepStrictEqual(clientView(stored), clientView(expected), `${file}: ${r.resourceType}/${r.id}`);
      }
    }
    assert.ok(conditional > 10000, `the set has many conditional references (${conditional})`);
  });

  test('every reference in the store resolves with a read', async () => {
    assert.ok((await assertAllReferencesResolve(t.store)) > 20000);
  });

  test('the writes went through the pipeline: each is audited, as the local CLI principal', async () => {
    const events = await auditEvents(t.dir);
    const updates = events.filter((e) => e.subtype[0].code === 'update');
    assert.equal(updates.length, 7160);
    assert.ok(updates.every((e) => e.outcome === '0' && e.agent[0].network.address === 'local-cli'));
    assert.ok(updates.some((e) => /^Encounter\/[\w-]+\/_history\/1$/.test(e.entity[0].what.reference)));
    assert.ok(events.some((e) => e.subtype[0].code === 'transaction'), 'lines travel in transaction Bundles');
  });

  test('importing again changes nothing: no new versions', async () => {
    const before = await versionsStored(t.store);
    const again = await t.run([syntheaNdjson]);
    assert.deepEqual(again.errors, []);
    assertNothingChanged(again);
    assert.equal(totalResources(again), 7160);
    assert.equal(Object.values(again.byType).reduce((n, c) => n + c.unchanged, 0), 7160);
    assert.equal(await versionsStored(t.store), before);
  });
});

describe('transaction Bundles: three Synthea patients', () => {
  const t = useStore();
  // Christian and Dusty share an Organization (same id, same content).
  const names = [
    'Christian_Balistreri_59339691-0270-4c4a-a34d-338e3008b9c3.json',
    'Dusty_Stracke_9fe3de76-2cd4-4c02-936a-8de0b18497dd.json',
    'Bill_Reinger_0bfeda65-c8ac-4dd7-a46c-d69e665996d4.json',
  ];
  const paths = names.map((n) => join(syntheaBundles, n));
  const bundles = paths.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Json);
  const entries = bundles.flatMap((b) => b.entry as Json[]);
  let report: ImportReport;

  before(async () => {
    report = await t.run(paths);
  });

  test('imports without errors; each distinct resource is created once', () => {
    assert.deepEqual(report.errors, [], formatSummary(report));
    const distinct = new Map<string, string>();
    for (const e of entries) distinct.set(`${e.resource.resourceType}/${e.resource.id}`, e.resource.resourceType);
    const expected: Record<string, number> = {};
    for (const type of distinct.values()) expected[type] = (expected[type] ?? 0) + 1;
    assert.deepEqual(created(report), expected);
    assert.equal(report.byType.Organization.unchanged, 1, 'the shared Organization was already there, unchanged');
    assert.equal(totalResources(report), entries.length);
  });

  test('every entry reads back equal under its id; urn:uuid references were rewritten to Type/id', async () => {
    const byFullUrl = new Map(entries.map((e) => [e.fullUrl as string, `${e.resource.resourceType}/${e.resource.id}`]));
    let rewritten = 0;
    for (const e of entries) {
      const r = e.resource as Json;
      const stored = await readJson(t.store, r.resourceType, r.id);
      assert.ok(stored, `${r.resourceType}/${r.id} is not stored`);
      const expected = mapReferences(r, (ref) => {
        if (!ref.startsWith('urn:uuid:')) return undefined;
        rewritten++;
        assert.ok(byFullUrl.has(ref), `${ref} names no entry`);
        return byFullUrl.get(ref);
      });
      assert.deepStrictEqual(clientView(stored), clientView(expected), `${r.resourceType}/${r.id}`);
    }
    assert.ok(rewritten > 500);
  });

  test('every reference in the store resolves with a read', async () => {
    assert.ok((await assertAllReferencesResolve(t.store)) > 1000);
  });

  test('importing again changes nothing: no new versions', async () => {
    const before = await versionsStored(t.store);
    const again = await t.run(paths);
    assert.deepEqual(again.errors, []);
    assertNothingChanged(again);
    assert.equal(totalResources(again), entries.length);
    assert.equal(await versionsStored(t.store), before);
  });
});

describe('--server-ids: transaction Bundles exactly as written', () => {
  const t = useStore();
  const path = join(syntheaBundles, 'Christian_Balistreri_59339691-0270-4c4a-a34d-338e3008b9c3.json');
  const bundle = JSON.parse(readFileSync(path, 'utf8')) as Json;
  const patient = bundle.entry[0].resource as Json;

  test('POST entries get server ids, the pipeline rewrites urn:uuid references; a re-run stores a second copy', async () => {
    const first = await t.run([path], { serverIds: true });
    assert.deepEqual(first.errors, []);
    assert.equal(totalResources(first), bundle.entry.length);
    assert.equal(await readJson(t.store, 'Patient', patient.id), undefined, 'the file id is not used');
    const identifier = (patient.identifier as Json[]).find((i) => i.system === 'https://github.com/synthetichealth/synthea');
    const [match] = await findMatches(t.store, t.config, 'Patient', `identifier=${identifier!.system}|${identifier!.value}`);
    assert.ok(match);
    assert.notEqual(match.id, patient.id);
    assert.ok((await assertAllReferencesResolve(t.store)) > 100);
    const enc = await findMatches(t.store, t.config, 'Encounter', `subject=Patient/${match.id}`);
    assert.ok(enc.length > 0, 'the encounters reference the new Patient id');

    const second = await t.run([path], { serverIds: true });
    assert.deepEqual(second.errors, []);
    assert.deepEqual(created(second), created(first));
    assert.equal((await findMatches(t.store, t.config, 'Patient', `identifier=${identifier!.system}|${identifier!.value}`)).length, 2);
  });
});

describe('errors are reported with file:line and do not stop the import', () => {
  const t = useStore();
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-import-input-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const patient = (id: string, extra: Json = {}) => ({ resourceType: 'Patient', id, name: [{ family: id }], ...extra });

  test('bad lines fail alone, each named by file:line; the good lines around them are stored', async () => {
    const file = join(dir, 'mixed.ndjson');
    const lines = [
      JSON.stringify(patient('good-1')),
      '{"resourceType": "Patient", "id": "broken", ',
      JSON.stringify(patient('bad-gender', { gender: 'nope' })),
      '',
      JSON.stringify({ resourceType: 'NoSuchType', id: 'x' }),
      JSON.stringify({ id: 'no-type' }),
      '[1, 2, 3]',
      JSON.stringify(patient('bad-date', { birthDate: 19800101 })),
      JSON.stringify(patient('bad id with spaces')),
      JSON.stringify(patient('good-2', { generalPractitioner: [{ reference: 'Practitioner?identifier=urn:test|nobody' }] })),
      JSON.stringify(patient('good-3')),
      JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'no id: POST' }, subject: { reference: 'Patient/good-1' } }),
    ];
    writeFileSync(file, lines.join('\n') + '\n');
    const report = await t.run([file]);
    const errors = report.errors.map((e) => `${e.file}:${e.line} ${e.message}`);
    assert.equal(errors.length, 8, errors.join('\n'));
    assert.match(errors[0], /mixed\.ndjson:2 invalid JSON/);
    assert.match(errors[1], /mixed\.ndjson:3 .*gender/i);
    assert.match(errors[2], /mixed\.ndjson:5 unknown resource type "NoSuchType"/);
    assert.match(errors[3], /mixed\.ndjson:6 not a FHIR resource: it has no resourceType/);
    assert.match(errors[4], /mixed\.ndjson:7 not a FHIR resource/);
    assert.match(errors[5], /mixed\.ndjson:8 .*birthDate/);
    assert.match(errors[6], /mixed\.ndjson:9 .*not a valid resource id/);
    assert.match(errors[7], /mixed\.ndjson:10 the conditional reference Practitioner\?identifier=urn:test\|nobody matches no resource/);
    assert.deepEqual(created(report), { Patient: 2, Observation: 1 });
    for (const id of ['good-1', 'good-3']) assert.ok(await readJson(t.store, 'Patient', id));
    for (const id of ['bad-gender', 'bad-date', 'good-2']) assert.equal(await readJson(t.store, 'Patient', id), undefined);
    const summary = formatSummary(report);
    assert.match(summary, /8 errors/);
    assert.match(summary, /mixed\.ndjson:3: /);
  });

  test('the same holds when every line is its own transaction (batch size 1) and in larger batches', async () => {
    const file = join(dir, 'batches.ndjson');
    const lines = [];
    for (let i = 0; i < 30; i++) lines.push(JSON.stringify(patient(`b-${i}`, i % 7 === 3 ? { gender: 'wrong' } : {})));
    writeFileSync(file, lines.join('\n'));
    for (const batchSize of [1, 4, 1000]) {
      const report = await t.run([file], { batchSize });
      assert.deepEqual(report.errors.map((e) => e.line), [4, 11, 18, 25], `batch size ${batchSize}`);
      const c = report.byType.Patient;
      assert.equal(c.created + c.unchanged, 26);
    }
  });

  test('a conditional reference to a resource later in the import resolves in the second pass; several matches is an error', async () => {
    const file = join(dir, 'forward.ndjson');
    writeFileSync(file, [
      JSON.stringify(patient('fwd-1', { managingOrganization: { reference: 'Organization?identifier=urn:test|later' } })),
      JSON.stringify({ resourceType: 'Organization', id: 'org-later', identifier: [{ system: 'urn:test', value: 'later' }] }),
      JSON.stringify({ resourceType: 'Organization', id: 'twin-1', identifier: [{ system: 'urn:test', value: 'twin' }] }),
      JSON.stringify({ resourceType: 'Organization', id: 'twin-2', identifier: [{ system: 'urn:test', value: 'twin' }] }),
      JSON.stringify(patient('fwd-2', { managingOrganization: { reference: 'Organization?identifier=urn:test|twin' } })),
    ].join('\n'));
    const report = await t.run([file]);
    assert.deepEqual(report.errors.map((e) => [e.line, e.message]), [[5, 'the conditional reference Organization?identifier=urn:test|twin matches several resources']]);
    const p = await readJson(t.store, 'Patient', 'fwd-1');
    assert.equal(p?.managingOrganization.reference, 'Organization/org-later');
  });

  test('gzipped NDJSON and JSON files import like plain ones', async () => {
    writeFileSync(join(dir, 'g.ndjson.gz'), gzipSync([JSON.stringify(patient('gz-1')), JSON.stringify(patient('gz-2'))].join('\r\n')));
    writeFileSync(join(dir, 'g.json.gz'), gzipSync(JSON.stringify(patient('gz-3'))));
    const report = await t.run([join(dir, 'g.ndjson.gz'), join(dir, 'g.json.gz')]);
    assert.deepEqual(report.errors, []);
    assert.equal(report.byType.Patient.created, 3);
    for (const id of ['gz-1', 'gz-2', 'gz-3']) assert.ok(await readJson(t.store, 'Patient', id));
  });

  test('a transaction Bundle with a bad entry: the error names the entry and its line, nothing of the Bundle is stored', async () => {
    const file = join(dir, 'tx.json');
    const bundle = {
      resourceType: 'Bundle', type: 'transaction', entry: [
        { fullUrl: 'urn:uuid:3f0e3e7e-1b7c-4a51-9b67-000000000001', resource: patient('tx-ok'), request: { method: 'POST', url: 'Patient' } },
        { fullUrl: 'urn:uuid:3f0e3e7e-1b7c-4a51-9b67-000000000002', resource: patient('tx-bad', { gender: 'nope' }), request: { method: 'POST', url: 'Patient' } },
      ],
    };
    writeFileSync(file, JSON.stringify(bundle, null, 2));
    const report = await t.run([file]);
    assert.equal(report.errors.length, 1);
    const [e] = report.errors;
    assert.equal(e.entry, 1);
    const text = readFileSync(file, 'utf8').split('\n');
    assert.match(text[e.line! - 1], /000000000002/, 'the line is that of the entry');
    assert.match(e.message, /gender.*rolled back/s);
    assert.equal(await readJson(t.store, 'Patient', 'tx-ok'), undefined);
  });

  test('a batch Bundle: entries fail alone', async () => {
    const file = join(dir, 'batch.json');
    writeFileSync(file, JSON.stringify({
      resourceType: 'Bundle', type: 'batch', entry: [
        { resource: patient('batch-ok'), request: { method: 'PUT', url: 'Patient/batch-ok' } },
        { resource: patient('batch-bad', { gender: 'nope' }), request: { method: 'PUT', url: 'Patient/batch-bad' } },
      ],
    }));
    const report = await t.run([file]);
    assert.deepEqual(report.errors.map((e) => e.entry), [1]);
    assert.ok(await readJson(t.store, 'Patient', 'batch-ok'));
  });

  test('a collection Bundle is unpacked; its urn:uuid references point at the entries', async () => {
    const file = join(dir, 'collection.json');
    writeFileSync(file, JSON.stringify({
      resourceType: 'Bundle', type: 'collection', entry: [
        { fullUrl: 'urn:uuid:7d3c1a1e-5f7b-4b43-8d1f-0000000000aa', resource: { resourceType: 'Patient', name: [{ family: 'Coll' }] } },
        { fullUrl: 'urn:uuid:7d3c1a1e-5f7b-4b43-8d1f-0000000000bb', resource: { resourceType: 'Observation', id: 'coll-obs', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:7d3c1a1e-5f7b-4b43-8d1f-0000000000aa' } } },
      ],
    }));
    const report = await t.run([file]);
    assert.deepEqual(report.errors, []);
    const obs = await readJson(t.store, 'Observation', 'coll-obs');
    assert.equal(obs?.subject.reference, 'Patient/7d3c1a1e-5f7b-4b43-8d1f-0000000000aa');
    assert.ok(await readJson(t.store, 'Patient', '7d3c1a1e-5f7b-4b43-8d1f-0000000000aa'));
    assertNothingChanged(await t.run([file]));
  });

  test('missing paths and unsupported files are errors; non-FHIR JSON files are skipped', async () => {
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ transactionTime: '2024-01-01T00:00:00Z', output: [] }));
    writeFileSync(join(dir, 'broken.json'), '{"resourceType": ');
    const report = await t.run([join(dir, 'nope.ndjson'), join(dir, 'notes.txt'), join(dir, 'manifest.json'), join(dir, 'broken.json')]);
    assert.deepEqual(report.errors.map((e) => [e.file.split('/').pop(), e.message.split(':')[0]]).sort(), [
      ['broken.json', 'invalid JSON'], ['nope.ndjson', 'no such file or directory'], ['notes.txt', 'not an NDJSON (.ndjson, .jsonl) or JSON (.json) file, optionally .gz'],
    ]);
    assert.deepEqual(report.skipped.map((s) => s.file.split('/').pop()), ['manifest.json']);
  });
});

describe('bastion import (the command)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bastion-import-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'import', ...args], { encoding: 'utf8', env: { ...process.env, BASTION_DATA_DIR: '' } });

  test('imports, prints the summary per type, exits 0; errors give file:line and exit code 1', async () => {
    const data = join(dir, 'data');
    const ok = run('--data-dir', data, join(syntheaNdjson, 'Organization.000.ndjson'), join(syntheaNdjson, 'Practitioner.000.ndjson'));
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /Imported 86 resources from 2 files/);
    assert.match(ok.stdout, /^Organization\s+43\s+0\s+0$/m);
    assert.match(ok.stdout, /^Practitioner\s+43\s+0\s+0$/m);
    assert.match(ok.stdout, /No errors\./);
    assert.equal(ok.stderr, '', 'no progress line when stderr is not a terminal');
    // Each batch of writes recorded its Provenance, signed with the data dir's provenance key.
    const stored = await openStore(data);
    try {
      const provenance = (await stored.history({ resourceType: 'Provenance', count: 100, offset: 0 })).entries.map((e) => JSON.parse(e.json!));
      assert.ok(provenance.length >= 1);
      assert.equal(provenance.reduce((n, p) => n + p.target.length, 0), 86);
      assert.ok(provenance.every((p) => p.signature?.[0]?.sigFormat === 'application/jose'));
    } finally {
      await stored.close();
    }

    const again = run('--data-dir', data, '--quiet', join(syntheaNdjson, 'Organization.000.ndjson'));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /^Organization\s+0\s+0\s+43$/m);

    const bad = join(dir, 'bad.ndjson');
    writeFileSync(bad, `${JSON.stringify({ resourceType: 'Patient', id: 'cli-ok' })}\nnot json\n`);
    const r = run('--data-dir', data, bad);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /bad\.ndjson:2: invalid JSON/);
    assert.match(r.stdout, /^Patient\s+1\s+0\s+0$/m);
    assert.match(r.stderr, /bastion import: 1 error/);
  });

  test('refuses a store another process has open (a running server), and says so', async () => {
    const data = join(dir, 'busy');
    const store = await openStore(data);
    try {
      const r = run('--data-dir', data, join(syntheaNdjson, 'Patient.000.ndjson'));
      assert.equal(r.status, 1);
      assert.match(r.stderr, /is in use by another process/);
    } finally {
      await store.close();
    }
    const free = run('--data-dir', data, join(syntheaNdjson, 'Patient.000.ndjson'));
    assert.equal(free.status, 0, free.stderr);
  });

  test('usage errors exit 2; --help describes the command', () => {
    const none = run('--data-dir', join(dir, 'x'));
    assert.equal(none.status, 2);
    assert.match(none.stderr, /name the NDJSON or JSON files/);
    const size = run('--batch-size', 'lots', 'x.ndjson');
    assert.equal(size.status, 2);
    const help = run('--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: bastion import/);
    assert.match(help.stdout, /--data-dir/);
  });
});
