import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { call, type Reply } from '../rest/server.ts';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { CODE, IDSYS, RES, conf, diagnostics, refs, seedConsentWorld, seedResearchWorld, seedWorld, type World } from './leakage-seed.ts';

const sensSystem = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/**
 * The leakage suite: end-to-end probes, against a live server, for what a caller must not learn
 * under the access engine's rules (relationship, security labels, patient compartment, role table,
 * minimum necessary). Every probe states the honest answer; a probe that the current server fails
 * is kept with `todo: 'LEAK: ...'` so it reports without failing the build.
 */
describe('leakage', () => {
  const t = useIssuerServer();
  let w: World;
  let id: Record<string, string>;
  const H: Record<string, Record<string, string>> = {};
  const get = (path: string, who: string): Promise<Reply> => call(`${t.base}/${path}`, { headers: H[who] });
  const send = (method: string, path: string, who: string, json?: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
    call(`${t.base}/${path}`, { method, headers: { ...H[who], ...headers }, ...(json === undefined ? {} : { json }) });
  const obs = (code: string, subject: string, extra: Record<string, unknown> = {}) => ({
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: CODE, code }] }, subject: { reference: subject }, ...extra,
  });
  const r = (name: string, type = 'Observation') => `${type}/${id[name]}`;
  const total = async (path: string, who: string): Promise<number> => {
    const res = await get(path, who);
    assert.equal(res.status, 200, res.text);
    return res.body.total;
  };
  /** Each probe finds what the system says it should, and for the physician nothing, counts included. */
  const findsNothingTheSystemFinds = async (probes: readonly (readonly [string, readonly string[]])[]) => {
    for (const [q, bySystem] of probes) {
      assert.deepEqual(refs(await get(q, 'system')), [...bySystem].sort(), `control: the system sees ${q}`);
      const res = await get(`${q}&_total=accurate`, 'doc');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(refs(res), [], q);
      assert.equal(res.body.total, 0, `${q} _total=accurate`);
      assert.equal(await total(`${q}&_summary=count`, 'doc'), 0, `${q} _summary=count`);
    }
  };
  const isOutcome = (res: Reply) => assert.equal(res.body?.resourceType, 'OperationOutcome', `${res.status} without an OperationOutcome: ${res.text}`);

  before(async () => {
    w = await seedWorld(t);
    id = w.id;
    H.system = await t.auth('system');
    H.doc = await t.auth('physician', 'user/*.cruds', w.doc);
    H.nurse = await t.auth('nurse', 'user/*.cruds', w.doc);
    H.lab = await t.auth('lab-technician', 'user/*.cruds', w.doc);
    H.billing = await t.auth('billing', 'user/*.cruds', w.doc);
    H.pat = await t.auth('patient', 'launch/patient patient/*.rs', { patient: id.A });
  });

  test('chained search does not reach an unrelated patient (matches, _total=accurate, _summary=count, compartment search)', async () => {
    const probes = [
      [`Observation?subject.name=Leakbravo`, [r('obsB'), r('obsCross')]],
      [`Observation?subject:Patient.identifier=${IDSYS}|B-1`, [r('obsB'), r('obsCross')]],
      [`Patient?general-practitioner.name=Leakgpbravo`, [r('B', 'Patient')]],
      [`Patient?general-practitioner:Practitioner.name=Leakgpbravo`, [r('B', 'Patient')]],
    ] as const;
    await findsNothingTheSystemFinds(probes);
    // Control: the same chain on the physician's own patient finds exactly what he may see (not V).
    const own = await get('Observation?subject.name=Leakalpha&_total=accurate', 'doc');
    assert.deepEqual(refs(own), [r('obsA'), r('obsAR'), r('obsAPsy')].sort());
    assert.equal(own.body.total, 3);
    // Compartment search of the unrelated patient: only obsCross, which the physician sees through Alpha (its performer).
    const comp = await get(`Patient/${id.B}/Observation?_total=accurate`, 'doc');
    assert.equal(comp.status, 200, comp.text);
    assert.deepEqual(refs(comp), [r('obsCross')]);
    assert.equal(comp.body.total, 1);
    // Patient/B/*: the role may not search across all types, so it must answer as for the physician's own patient.
    const star = await get(`Patient/${id.B}/*`, 'doc');
    const ownStar = await get(`Patient/${id.A}/*`, 'doc');
    assert.equal(star.status, ownStar.status, star.text);
    if (star.status === 200) assert.deepEqual(refs(star), [r('obsCross')]);
    else assert.equal(star.status, 403);
    assert.equal(await total(`Patient/${id.B}/Observation?_summary=count`, 'doc'), 1);
  });

  test('_has probes do not reveal an unrelated patient or a record above clearance', async () => {
    const probes = [
      [`Patient?_has:Observation:subject:code=${CODE}|b-code`, [r('B', 'Patient')]],
      // Alpha is the physician's patient, but the V-labelled Observation must not be testable.
      [`Patient?_has:Observation:subject:code=${CODE}|av-code`, [r('A', 'Patient')]],
      [`Practitioner?_has:Patient:general-practitioner:name=Leakbravo`, [r('gpB', 'Practitioner')]],
      [`Practitioner?_has:Observation:performer:code=${CODE}|b-code`, [r('gpB', 'Practitioner')]],
    ] as const;
    await findsNothingTheSystemFinds(probes);
    assert.deepEqual(refs(await get(`Patient?_has:Observation:subject:code=${CODE}|a-code`, 'doc')), [r('A', 'Patient')], 'control');
  });

  test('a patient-scoped token: _has and chains do not reveal other patients', async () => {
    assert.deepEqual(refs(await get(`Patient?_has:Observation:subject:code=${CODE}|a-code`, 'pat')), [r('A', 'Patient')], 'control');
    for (const q of [
      `Patient?_has:Observation:subject:code=${CODE}|b-code`,
      // obsCross is in Alpha's compartment (Alpha performed it) but is about Bravo.
      `Patient?_has:Observation:subject:code=${CODE}|cross-code`,
      `Patient?_has:Observation:subject:identifier=${IDSYS}|b-code`,
      `Observation?subject.name=Leakbravo`,
      `Observation?subject:Patient.identifier=${IDSYS}|B-1`,
    ]) {
      const res = await get(`${q}&_total=accurate`, 'pat');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(refs(res), [], q);
      assert.equal(res.body.total, 0, q);
    }
    assert.equal(await total('Patient?_summary=count', 'pat'), 1, 'one patient: the launch patient');
  });

  test('_include: allowed targets come along, unrelated or above-clearance patients do not', async () => {
    const perf = await get(`Observation?_id=${id.obsA}&_include=Observation:performer`, 'doc');
    assert.deepEqual(refs(perf, 'match'), [r('obsA')]);
    assert.deepEqual(refs(perf, 'include'), [r('doc', 'Practitioner')], 'a Practitioner is fine');
    const probes = [
      [`Observation?_id=${id.obsA}&_include=Observation:focus`, r('obsA'), [r('B', 'Patient')]],
      [`Observation?_id=${id.obsCross}&_include=Observation:subject`, r('obsCross'), [r('B', 'Patient')]],
      [`Observation?_id=${id.obsCross}&_include=Observation:subject&_include:iterate=Patient:general-practitioner`, r('obsCross'), [r('B', 'Patient'), r('gpB', 'Practitioner')]],
      [`Observation?_id=${id.obsVic}&_include=Observation:subject`, r('obsVic'), [r('V', 'Patient')]],
    ] as const;
    for (const [q, match, bySystem] of probes) {
      assert.deepEqual(refs(await get(q, 'system'), 'include'), [...bySystem].sort(), `control: the system includes for ${q}`);
      const res = await get(q, 'doc');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(refs(res, 'match'), [match], q);
      assert.deepEqual(refs(res, 'include'), [], q);
    }
  });

  test('_revinclude does not bring restricted (labelled) Observations', async () => {
    const q = `Patient?_id=${id.A}&_revinclude=Observation:subject`;
    const expected: Record<string, string[]> = {
      system: ['obsA', 'obsAR', 'obsAV', 'obsAPsy'], doc: ['obsA', 'obsAR', 'obsAPsy'], nurse: ['obsA', 'obsAR'], lab: ['obsA'],
    };
    for (const [who, names] of Object.entries(expected)) {
      const res = await get(q, who);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(refs(res, 'match'), [r('A', 'Patient')], who);
      assert.deepEqual(refs(res, 'include'), names.map((n) => r(n)).sort(), who);
    }
  });

  test('counts (_summary=count, _total=accurate) leave out labels above the clearance', async () => {
    const expected: Record<string, string[]> = {
      system: ['obsA', 'obsAR', 'obsAV', 'obsAPsy'], doc: ['obsA', 'obsAR', 'obsAPsy'], nurse: ['obsA', 'obsAR'], lab: ['obsA'],
    };
    for (const [who, names] of Object.entries(expected)) {
      assert.equal(await total(`Observation?subject=Patient/${id.A}&_summary=count`, who), names.length, `${who} _summary=count`);
      const res = await get(`Observation?subject=Patient/${id.A}&_total=accurate`, who);
      assert.equal(res.body.total, names.length, `${who} _total=accurate`);
      assert.deepEqual(refs(res), names.map((n) => r(n)).sort(), who);
    }
    const v = `Observation?subject=Patient/${id.A}&_security=${conf('V').system}|V&_summary=count`;
    assert.equal(await total(v, 'system'), 1);
    assert.equal(await total(v, 'doc'), 0, 'counting V by its label');
    assert.equal(await total(`Observation?code=${CODE}|ar-code&_summary=count`, 'lab'), 0);
    assert.equal(await total(`Patient?name=Leak&_summary=count`, 'doc'), 3, 'Alpha, Alpha two, Mike (not V-labelled Victor, not Bravo or Echo)');
  });

  test('history of a resource that became restricted, or moved to another patient, gives no version away', async () => {
    const seed = 'system';
    const made = await send('POST', 'Observation', seed, obs('h-code', r('M', 'Patient')));
    assert.equal(made.status, 201, made.text);
    const h = made.body.id as string;
    const moved0 = await send('POST', 'Observation', seed, obs('h2-code', r('M', 'Patient')));
    const m = moved0.body.id as string;
    // Control: before the change, each caller reads version 1.
    assert.equal((await get(`Observation/${h}/_history/1`, 'lab')).status, 200);
    assert.equal((await get(`Observation/${m}/_history/1`, 'doc')).status, 200);
    const labelled = await send('PUT', `Observation/${h}`, seed, { ...made.body, meta: { security: [conf('R')] } });
    assert.equal(labelled.status, 200, labelled.text);
    assert.equal((await send('PUT', `Observation/${m}`, seed, { ...moved0.body, subject: { reference: r('B', 'Patient') } })).status, 200);
    assert.equal((await get(`Observation/${h}/_history`, seed)).body.total, 2, 'control: two versions');
    const absent = randomUUID();
    for (const [who, hidden] of [['lab', h], ['doc', m]] as const) {
      for (const v of ['', '/_history/1', '/_history/2']) {
        const hid = await get(`Observation/${hidden}${v}`, who);
        assert.equal(hid.status, 404, `${who} GET Observation/${hidden}${v}: ${hid.text}`);
        isOutcome(hid);
        sameAnswerAs(hid, await get(`Observation/${absent}${v}`, who), [hidden, absent], `${who} ${v || 'read'}`);
      }
      const inst = await get(`Observation/${hidden}/_history`, who);
      // The self link echoes the id asked for (as for an absent id); no entry may be a version of it.
      assert.equal((inst.body.entry ?? []).length, 0, `${who} instance history shows ${hidden}: ${inst.text}`);
      sameAnswerAs(inst, await get(`Observation/${absent}/_history`, who), [hidden, absent], `${who} instance history`);
      for (const path of ['Observation/_history', '_history', `Observation/_history?_since=${new Date(Date.now() - 60_000).toISOString()}`]) {
        const res = await get(path, who);
        assert.ok(res.status === 200 || res.status === 403, `${who} ${path}: ${res.status}`);
        assert.ok(!res.text.includes(hidden), `${who} ${path} shows a version of ${hidden}`);
      }
    }
  });

  test('conditional update / create / delete do not tell a hidden match from no match', async () => {
    const body = (tag: string) => obs('probe-code', r('M', 'Patient'), { identifier: [{ system: IDSYS, value: `${tag}-${randomUUID()}` }] });
    const put = (criteria: string) => send('PUT', `Observation?identifier=${encodeURIComponent(criteria)}`, 'doc', body('probe-put'));
    const post = (criteria: string) => send('POST', 'Observation', 'doc', body('probe-create'), { 'if-none-exist': `identifier=${criteria}` });
    const del = (criteria: string) => send('DELETE', `Observation?identifier=${encodeURIComponent(criteria)}`, 'doc');
    // Bravo's Observation (no relationship), and Alpha's V-labelled one (her physician, but above his clearance).
    for (const code of ['b-code', 'av-code']) {
      const hidden = `${IDSYS}|${code}`;
      const none = `${IDSYS}|nohit-${randomUUID()}`;
      const blank = [encodeURIComponent(hidden), encodeURIComponent(none), hidden, none, code, none.split('|')[1]];
      const pHidden = await put(hidden);
      assert.equal(pHidden.status, 201, `conditional update (${code}) ${pHidden.text}`);
      sameAnswerAs(pHidden, await put(none), blank, `conditional update (${code})`);
      const cHidden = await post(hidden);
      assert.equal(cHidden.status, 201, `conditional create (${code}) ${cHidden.text}`);
      sameAnswerAs(cHidden, await post(none), blank, `conditional create (${code})`);
      const dHidden = await del(hidden);
      assert.equal(dHidden.status, 200, `conditional delete (${code}) ${dHidden.text}`);
      sameAnswerAs(dHidden, await del(none), blank, `conditional delete (${code})`);
    }
    for (const n of ['obsB', 'obsAV']) {
      const still = await get(r(n), 'system');
      assert.equal(still.status, 200, `${n} was deleted`);
      assert.equal(still.body.meta.versionId, '1', `${n} was changed`);
    }
    // A transaction's conditional reference to a hidden patient fails like one to nobody.
    const tx = (criteria: string) => send('POST', '', 'doc', { resourceType: 'Bundle', type: 'transaction', entry: [
      { request: { method: 'POST', url: 'Observation' }, resource: obs('probe-ref', `Patient?identifier=${criteria}`) },
    ] });
    sameAnswerAs(await tx(`${IDSYS}|B-1`), await tx(`${IDSYS}|Z-9`), [`${IDSYS}|B-1`, `${IDSYS}|Z-9`], 'conditional reference');
  });

  test('batch: allowed entry 200, hidden entries 404 (not 403); a transaction with one forbidden write rolls back', async () => {
    const b = await send('POST', '', 'doc', { resourceType: 'Bundle', type: 'batch', entry: [
      { request: { method: 'GET', url: r('obsA') } },
      { request: { method: 'GET', url: r('obsB') } },
      { request: { method: 'GET', url: r('obsAV') } },
      { request: { method: 'GET', url: r('B', 'Patient') } },
    ] });
    assert.equal(b.status, 200, b.text);
    const statuses = b.body.entry.map((e: { response: { status: string } }) => e.response.status);
    assert.deepEqual(statuses, ['200 OK', '404 Not Found', '404 Not Found', '404 Not Found']);
    assert.equal(b.body.entry[0].resource.id, id.obsA);
    for (const e of b.body.entry.slice(1)) {
      assert.equal(e.resource, undefined);
      assert.equal(e.response.outcome?.resourceType, 'OperationOutcome');
    }
    const mark = randomUUID();
    const tx = await send('POST', '', 'doc', { resourceType: 'Bundle', type: 'transaction', entry: [
      { request: { method: 'POST', url: 'Observation' }, resource: obs('tx-ok', r('M', 'Patient'), { identifier: [{ system: IDSYS, value: `tx-${mark}` }] }) },
      { request: { method: 'POST', url: 'Observation' }, resource: obs('tx-bad', r('B', 'Patient'), { identifier: [{ system: IDSYS, value: `tx-${mark}` }] }) },
    ] });
    assert.equal(tx.status, 403, tx.text);
    isOutcome(tx);
    const tx2 = await send('POST', '', 'doc', { resourceType: 'Bundle', type: 'transaction', entry: [
      { request: { method: 'POST', url: 'Observation' }, resource: obs('tx-ok', r('M', 'Patient'), { identifier: [{ system: IDSYS, value: `tx-${mark}` }] }) },
      { request: { method: 'PATCH', url: r('obsB') }, resource: { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Observation.status' }, { name: 'value', valueCode: 'amended' }] }] } },
    ] });
    assert.equal(tx2.status, 404, tx2.text);
    isOutcome(tx2);
    assert.equal(await total(`Observation?identifier=${IDSYS}|tx-${mark}&_summary=count`, 'system'), 0, 'nothing of either transaction was kept');
    assert.equal((await get(r('obsB'), 'system')).body.meta.versionId, '1');
  });

  test('direct read: 404 (with an OperationOutcome) where the caller may not know it exists, 403 where the role may not read the type', async () => {
    const absent = randomUUID();
    for (const [who, path] of [
      ['doc', r('obsB')], ['doc', r('B', 'Patient')], ['doc', r('obsAV')], ['doc', r('V', 'Patient')],
      ['lab', r('obsAR')], ['nurse', r('obsAPsy')], ['pat', r('obsB')], ['pat', r('B', 'Patient')],
    ] as const) {
      const hid = await get(path, who);
      assert.equal(hid.status, 404, `${who} GET ${path}`);
      isOutcome(hid);
      const type = path.split('/')[0];
      sameAnswerAs(hid, await get(`${type}/${absent}`, who), [path.split('/')[1], absent], `${who} ${path}`);
    }
    const denied = await get(r('obsA'), 'billing');
    assert.equal(denied.status, 403, denied.text);
    isOutcome(denied);
    const deniedAbsent = await get(`Observation/${absent}`, 'billing');
    sameAnswerAs(denied, deniedAbsent, [id.obsA, absent], 'billing read of a type it may not read');
  });

  test('masked elements stay masked in reads, _elements, _include and batch entries', async () => {
    const masked = (p: Record<string, unknown>, where: string) => {
      assert.equal(p.telecom, undefined, `${where}: telecom`);
      assert.equal(p.address, undefined, `${where}: address`);
      assert.ok(!JSON.stringify(p).includes('Alphaville') && !JSON.stringify(p).includes('555-0101'), where);
    };
    const read = await get(r('A', 'Patient'), 'lab');
    assert.equal(read.status, 200);
    masked(read.body, 'read');
    const el = await get(`Patient?_id=${id.A}&_elements=name,telecom,address`, 'lab');
    assert.equal(el.body.entry.length, 1);
    masked(el.body.entry[0].resource, '_elements');
    const inc = await get(`Observation?_id=${id.obsA}&_include=Observation:subject`, 'lab');
    assert.deepEqual(refs(inc, 'include'), [r('A', 'Patient')]);
    masked(inc.body.entry.find((e: { search: { mode: string } }) => e.search.mode === 'include').resource, '_include');
    const sum = await get(`Patient?_id=${id.A}&_summary=true`, 'lab');
    masked(sum.body.entry[0].resource, '_summary=true');
    const b = await send('POST', '', 'lab', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: r('A', 'Patient') } }] });
    masked(b.body.entry[0].resource, 'batch');
  });

  test('searching by a masked element does not reveal its value', async () => {
    assert.deepEqual(refs(await get('Patient?address-city=Alphaville', 'system')), [r('A', 'Patient')], 'control');
    await allOf(['Patient?address-city=Alphaville', 'Patient?phone=555-0101', 'Patient?telecom=555-0101', 'Patient?address=Alphaville',
      'Observation?subject:Patient.address-city=Alphaville', 'Patient?_content=Alphaville', `Patient?_id=${id.A}&address-city:missing=false`,
    ].map((q) => [q, async () => {
      const res = await get(q, 'lab');
      // Honest: refused, or answered as if the element were absent (no match).
      assert.ok(res.status === 400 || res.status === 403 || (res.status === 200 && refs(res).length === 0), `${res.status} ${refs(res).join(', ')}`);
    }]));
  });

  test('sorting by a masked element does not reveal the order of its values', async () => {
    const order = async (sort: string, who: string) => {
      const res = await get(`Patient?name=Leakalpha&_sort=${sort}`, who);
      return res.status === 200 ? (res.body.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id) : res.status;
    };
    assert.notDeepEqual(await order('address-city', 'system'), await order('-address-city', 'system'), 'control: the sort orders for the system');
    assert.deepEqual(await order('address-city', 'lab'), await order('-address-city', 'lab'), 'the order follows the masked city');
  });

  test('a masked element inside a contained resource is masked too', async () => {
    const made = await send('POST', 'Observation', 'system', obs('contained-code', r('M', 'Patient'), {
      contained: [{ resourceType: 'Patient', id: 'p1', telecom: [{ system: 'phone', value: '555-0999' }], address: [{ city: 'Containedville' }] }],
      focus: [{ reference: '#p1' }],
    }));
    assert.equal(made.status, 201, made.text);
    const read = await get(`Observation/${made.body.id}`, 'lab');
    assert.equal(read.status, 200, read.text);
    assert.ok(!read.text.includes('555-0999') && !read.text.includes('Containedville'), read.text);
  });

  // Writes by id to what the physician may not see: Bravo's Observation (no relationship), Alpha's V-labelled one (above clearance).
  const hiddenWrite = (method: 'PUT' | 'DELETE' | 'PATCH') => async () => {
    const patch = [{ op: 'replace', path: '/status', value: 'amended' }];
    const attempt = (rid: string) => method === 'PATCH'
      ? call(`${t.base}/Observation/${rid}`, { method, headers: { ...H.doc, 'content-type': 'application/json-patch+json' }, body: JSON.stringify(patch) })
      : send(method, `Observation/${rid}`, 'doc', method === 'PUT' ? { ...obs('put-probe', r('M', 'Patient')), id: rid } : undefined);
    await allOf(['obsB', 'obsAV'].map((n): [string, () => Promise<void>] => [n, async () => {
      const absent = randomUUID();
      sameAnswerAs(await attempt(id[n]), await attempt(absent), [id[n], absent], `${method} ${n}`);
    }]));
    for (const n of ['obsB', 'obsAV']) {
      const still = await get(r(n), 'system');
      assert.equal(still.status, 200, `${n} was deleted`);
      assert.equal(still.body.meta.versionId, '1', `${n} was changed`);
    }
  };

  test('PUT to a hidden resource answers as for a nonexistent id', hiddenWrite('PUT'));

  test('DELETE of a hidden resource answers as for a nonexistent id', hiddenWrite('DELETE'));

  test('PATCH of a hidden resource answers as for a nonexistent id', hiddenWrite('PATCH'));

  test('_list of a hidden List does not reveal its entries', async () => {
    assert.deepEqual(refs(await get(`Organization?_list=${id.listB}`, 'system')), [r('org', 'Organization')], 'control');
    assert.equal((await get(r('listB', 'List'), 'doc')).status, 404, 'the List itself is hidden');
    const hid = await get(`Organization?_list=${id.listB}&_total=accurate`, 'doc');
    const none = await get(`Organization?_list=${randomUUID()}&_total=accurate`, 'doc');
    assert.equal(hid.status, 200);
    assert.deepEqual(refs(hid), refs(none));
    assert.equal(hid.body.total, none.body.total);
  });

  const selfRelated = (kind: 'CareTeam' | 'Encounter', patientName: string) => async () => {
    const me = `Practitioner/intruder-${kind}`;
    const intruder = await t.auth('physician', 'user/*.cruds', { fhirUser: me, sub: `intruder-${kind}` });
    const P = r(patientName, 'Patient');
    assert.equal((await call(`${t.base}/${P}`, { headers: intruder })).status, 404, 'control: unrelated');
    const body = kind === 'CareTeam'
      ? { resourceType: 'CareTeam', status: 'active', subject: { reference: P }, participant: [{ member: { reference: me } }] }
      : { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: P }, participant: [{ individual: { reference: me } }] };
    const made = await call(`${t.base}/${kind}`, { method: 'POST', headers: intruder, json: body });
    const after = await call(`${t.base}/${P}`, { headers: intruder });
    assert.equal(after.status, 404, `the patient became readable after POST ${kind} answered ${made.status}`);
    assert.equal(made.status, 403, made.text);
  };

  test('a clinician cannot make himself related by creating a CareTeam', selfRelated('CareTeam', 'E'));

  test('a clinician cannot make himself related by creating an Encounter', selfRelated('Encounter', 'F'));
});

/** A hidden thing's answer must not differ from a nonexistent thing's (status and message, ids blanked). */
function sameAnswerAs(hidden: Reply, absent: Reply, blank: string[], what: string): void {
  assert.equal(hidden.status, absent.status, `${what}: status ${hidden.status} (hidden) vs ${absent.status} (nonexistent)\n${hidden.text}\n${absent.text}`);
  assert.equal(diagnostics(hidden.body, blank), diagnostics(absent.body, blank), `${what}: the messages differ`);
}

/** Runs every check and fails once with all the failures, so a report names every leaking probe. */
async function allOf(checks: [string, () => Promise<void> | void][]): Promise<void> {
  const failed: string[] = [];
  for (const [name, check] of checks) {
    try {
      await check();
    } catch (err) {
      failed.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  assert.deepEqual(failed, []);
}

/**
 * The Consent rule: what a patient's Consent withholds from a caller must not be learnt through
 * any other door (chains, _has, includes, counts, writes, batches, compartments, history). Consdoc
 * is denied Charlie's record (actor), nobody but the patient sees Kilo's Observations (class) or
 * Lima's PSY-labelled ones (label); Consdoctwo, named by no Consent, is the control.
 */
describe('leakage: consent', () => {
  const t = useIssuerServer();
  let id: Record<string, string>;
  const H: Record<string, Record<string, string>> = {};
  const get = (path: string, who: string): Promise<Reply> => call(`${t.base}/${path}`, { headers: H[who] });
  const r = (name: string, type = 'Observation') => `${type}/${id[name]}`;
  const total = async (path: string, who: string): Promise<number> => {
    const res = await get(path, who);
    assert.equal(res.status, 200, `${who} ${path}: ${res.text}`);
    return res.body.total;
  };
  /** The matches (and their _total=accurate, and _summary=count) of a search by `who`. */
  const found = async (q: string, who: string): Promise<string[]> => {
    const res = await get(`${q}&_total=accurate`, who);
    assert.equal(res.status, 200, `${who} ${q}: ${res.text}`);
    const matches = refs(res, 'match');
    assert.equal(res.body.total, matches.length, `${who} ${q}: _total=accurate counts ${res.body.total}, shows ${matches.length}`);
    assert.equal(await total(`${q}&_summary=count`, who), matches.length, `${who} ${q}: _summary=count`);
    return matches;
  };

  before(async () => {
    const w = await seedConsentWorld(t);
    id = w.id;
    H.system = await t.auth('system');
    H.doc = await t.auth('physician', 'user/*.cruds', w.doc);
    // The control: a physician the Consents do not name (a token of its own: same role, other fhirUser).
    H.doc2 = await t.auth('physician', 'user/*.cruds', w.doc2);
    H.researcher = await t.auth('researcher', 'user/*.rs');
    H.patK = await t.auth('patient', 'launch/patient patient/*.rs', { patient: id.K });
    H.patL = await t.auth('patient', 'launch/patient patient/*.rs', { patient: id.L });
  });

  test('controls: the data is there, and each Consent withholds what it says', async () => {
    assert.equal((await get(r('C', 'Patient'), 'doc2')).status, 200);
    assert.equal((await get(r('obsC'), 'doc2')).status, 200);
    assert.equal((await get(r('C', 'Patient'), 'doc')).status, 404);
    assert.equal((await get(r('K', 'Patient'), 'doc')).status, 200);
    assert.equal((await get(r('docK', 'DocumentReference'), 'doc')).status, 200);
    assert.equal((await get(r('obsK'), 'doc')).status, 404);
    assert.equal((await get(r('obsK'), 'patK')).status, 200, 'the patient sees her own Observation');
    assert.equal((await get(r('obsL'), 'doc')).status, 200);
    assert.equal((await get(r('obsLPsy'), 'doc')).status, 404);
    assert.equal((await get(r('obsLPsy'), 'patL')).status, 200);
  });

  test('direct reads, versions, history, batch entries and compartment searches answer as for what does not exist', async () => {
    const absent = randomUUID();
    await allOf([['doc', 'C', 'Patient'], ['doc', 'obsC', 'Observation'], ['doc', 'obsK', 'Observation'], ['doc2', 'obsK', 'Observation'], ['doc', 'obsLPsy', 'Observation'], ['system', 'obsK', 'Observation'], ['researcher', 'obsK', 'Observation']]
      .flatMap(([who, name, type]): [string, () => Promise<void>][] => ['', '/_history/1', '/_history'].map((v) => [`${who} ${type}/${name}${v}`, async () => {
        const hid = await get(`${type}/${id[name]}${v}`, who);
        const none = await get(`${type}/${absent}${v}`, who);
        sameAnswerAs(hid, none, [id[name], absent], `${who} ${type}/${name}${v}`);
      }])));
    const b = await call(t.base, { method: 'POST', headers: H.doc, json: { resourceType: 'Bundle', type: 'batch', entry: [
      { request: { method: 'GET', url: r('C', 'Patient') } }, { request: { method: 'GET', url: r('obsK') } }, { request: { method: 'GET', url: r('obsLPsy') } },
      { request: { method: 'GET', url: `Observation?subject=${r('C', 'Patient')}&_total=accurate` } },
    ] } });
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(b.body.entry.map((e: { response: { status: string } }) => e.response.status), ['404 Not Found', '404 Not Found', '404 Not Found', '200 OK']);
    assert.equal(b.body.entry[3].resource.total, 0);
    // The compartment of a withheld patient: as empty as a nonexistent patient's.
    for (const [who, name] of [['doc', 'C'], ['doc', 'K'], ['doc2', 'K']] as const) {
      const comp = await get(`Patient/${id[name]}/Observation?_total=accurate`, who);
      const none = await get(`Patient/${absent}/Observation?_total=accurate`, who);
      assert.equal(comp.status, none.status, `${who} Patient/${name}/Observation: ${comp.text}`);
      if (comp.status === 200) assert.deepEqual([refs(comp), comp.body.total], [[], 0], `${who} Patient/${name}/Observation`);
    }
  });

  test('chained searches do not reach a withheld resource (matches, _total=accurate, _summary=count)', async () => {
    const cases: [string, Record<string, string[]>][] = [
      [`Observation?subject.name=Conscharlie`, { doc: [], doc2: [r('obsC')] }],
      [`Observation?subject:Patient.identifier=${IDSYS}|C-1`, { doc: [], doc2: [r('obsC')] }],
      [`Observation?subject:Patient.address-city=Charlieville`, { doc: [], doc2: [r('obsC')] }],
      // Oscar's Observation (seen by both) points at Charlie, at Kilo's Observation and at Lima's PSY one.
      [`Observation?focus:Patient.name=Conscharlie`, { doc: [], doc2: [r('obsO')] }],
      [`Observation?focus:Observation.code=${CODE}|k-code`, { doc: [], doc2: [], system: [] }],
      [`Observation?focus:Observation.code=${CODE}|lpsy-code`, { doc: [], doc2: [], system: [] }],
      [`Observation?focus:Observation.code=${CODE}|l-code`, { doc: [r('obsO')], doc2: [r('obsO')] }],
      [`Practitioner?_has:Observation:performer:code=${CODE}|c-code`, { doc: [], doc2: [r('perfC', 'Practitioner')] }],
    ];
    await allOf(cases.flatMap(([q, byWho]) => Object.entries(byWho).map(([who, want]): [string, () => Promise<void>] => [`${who} ${q}`, async () => {
      assert.deepEqual(await found(q, who), want.sort());
    }])));
    // Researchers may not chain at all (a chain probes the linked resource's hidden details).
    assert.equal((await get(`Observation?focus:Observation.code=${CODE}|k-code`, 'researcher')).status, 403);
  });

  test('_has does not test a withheld resource, nor return a withheld patient', async () => {
    const cases: [string, Record<string, string[]>][] = [
      [`Patient?_has:Observation:subject:code=${CODE}|c-code`, { doc: [], doc2: [r('C', 'Patient')] }],
      [`Patient?_has:Observation:subject:code=${CODE}|k-code`, { doc: [], doc2: [], system: [], patK: [r('K', 'Patient')] }],
      [`Patient?_has:Observation:subject:code=${CODE}|lpsy-code`, { doc: [], doc2: [], patL: [r('L', 'Patient')] }],
      [`Patient?_has:Observation:subject:code=${CODE}|l-code`, { doc: [r('L', 'Patient')] }],
      [`Patient?_has:Observation:subject:identifier=${IDSYS}|k-code`, { doc: [], doc2: [] }],
      // The Consents themselves are never withheld; the patient they name still is.
      [`Patient?_has:Consent:patient:status=active`, { doc: [r('K', 'Patient'), r('L', 'Patient')], doc2: [r('C', 'Patient'), r('K', 'Patient'), r('L', 'Patient')] }],
    ];
    await allOf(cases.flatMap(([q, byWho]) => Object.entries(byWho).map(([who, want]): [string, () => Promise<void>] => [`${who} ${q}`, async () => {
      assert.deepEqual(await found(q, who), want.sort());
    }])));
  });

  test('_include and _revinclude do not bring a withheld resource', async () => {
    const cases: [string, string, Record<string, string[]>][] = [
      [`Observation?_id=${id.obsO}&_include=Observation:focus`, r('obsO'), { doc: [r('obsL')], doc2: [r('C', 'Patient'), r('obsL')] }],
      // :iterate follows the match too (Oscar), and the included Observation (Lima), not the withheld focus.
      [`Observation?_id=${id.obsO}&_include=Observation:focus&_include:iterate=Observation:subject`, r('obsO'), { doc: [r('obsL'), r('L', 'Patient'), r('O', 'Patient')], doc2: [r('C', 'Patient'), r('obsL'), r('L', 'Patient'), r('O', 'Patient')] }],
      [`Patient?_id=${id.K}&_revinclude=Observation:subject`, r('K', 'Patient'), { doc: [], doc2: [], system: [] }],
      [`Patient?_id=${id.K}&_revinclude=DocumentReference:subject`, r('K', 'Patient'), { doc: [r('docK', 'DocumentReference')] }],
      [`Patient?_id=${id.L}&_revinclude=Observation:subject`, r('L', 'Patient'), { doc: [r('obsL')], doc2: [r('obsL')] }],
      [`Practitioner?_id=${id.perfC}&_revinclude=Observation:performer`, r('perfC', 'Practitioner'), { doc: [], doc2: [r('obsC')] }],
      [`Consent?_id=${id.cC}&_include=Consent:patient`, r('cC', 'Consent'), { doc: [], doc2: [r('C', 'Patient')] }],
    ];
    await allOf(cases.flatMap(([q, match, byWho]) => Object.entries(byWho).map(([who, want]): [string, () => Promise<void>] => [`${who} ${q}`, async () => {
      const res = await get(q, who);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(refs(res, 'match'), [match]);
      assert.deepEqual(refs(res, 'include'), want.sort());
    }])));
  });

  test('counts (_summary=count, _total=accurate) leave out what a Consent withholds', async () => {
    const cases: [string, Record<string, number>][] = [
      [`Observation?code=${CODE}|c-code`, { doc: 0, doc2: 1, researcher: 1 }],
      [`Observation?identifier=${IDSYS}|c-code`, { doc: 0, doc2: 1 }],
      [`Observation?code=${CODE}|k-code`, { doc: 0, doc2: 0, system: 0, researcher: 0, patK: 1 }],
      [`Observation?subject=${r('K', 'Patient')}`, { doc: 0, system: 0 }],
      [`Observation?subject=${r('L', 'Patient')}`, { doc: 1, doc2: 1, patL: 2 }],
      [`Observation?subject=${r('L', 'Patient')}&_security=${sensSystem}|PSY`, { doc: 0, system: 0, patL: 1 }],
      [`Observation?_security=${sensSystem}|PSY`, { doc: 0, doc2: 0, system: 0 }],
      [`Observation?code=${CODE}|k-code,${CODE}|l-code,${CODE}|lpsy-code,${CODE}|c-code`, { doc: 1, doc2: 2, system: 2 }],
      [`Patient?identifier=${IDSYS}|C-1`, { doc: 0, doc2: 1 }],
      [`Patient?name=Cons`, { doc: 3, doc2: 4 }],
    ];
    await allOf(cases.flatMap(([q, byWho]) => Object.entries(byWho).map(([who, n]): [string, () => Promise<void>] => [`${who} ${q}`, async () => {
      assert.equal(await total(`${q}&_summary=count`, who), n, '_summary=count');
      const res = await get(`${q}&_total=accurate`, who);
      assert.equal(res.body.total, n, '_total=accurate');
      assert.equal(refs(res, 'match').length, n, 'matches');
    }])));
  });

  test('type and system history, and $everything, leave out what a Consent withholds', async () => {
    const withheld: Record<string, string[]> = { doc: ['C', 'obsC', 'obsK', 'obsLPsy'], doc2: ['obsK', 'obsLPsy'], system: ['obsK', 'obsLPsy'], researcher: ['obsK', 'obsLPsy'] };
    await allOf(Object.entries(withheld).flatMap(([who, names]) => ['Observation/_history', 'Patient/_history', '_history', `Patient/${id.K}/$everything`, `Patient/${id.L}/$everything`]
      .map((path): [string, () => Promise<void>] => [`${who} ${path}`, async () => {
        const res = await get(path, who);
        assert.ok(res.status === 200 || res.status === 403, `${res.status}: ${res.text.slice(0, 200)}`);
        assert.deepEqual(names.filter((n) => res.text.includes(id[n])), [], 'withheld resources shown');
      }])));
    // $everything of a patient withheld whole answers as for one that does not exist.
    const absent = randomUUID();
    sameAnswerAs(await get(`Patient/${id.C}/$everything`, 'doc'), await get(`Patient/${absent}/$everything`, 'doc'), [id.C, absent], '$everything');
    const own = await get(`Patient/${id.C}/$everything`, 'doc2');
    assert.equal(own.status, 200, own.text);
    assert.ok(own.text.includes(id.obsC), 'control: the unnamed physician gets Charlie\'s Observation');
  });

  test('writes by id to a withheld resource answer as for a nonexistent id, and change nothing', async () => {
    const patch = [{ op: 'replace', path: '/status', value: 'amended' }];
    const attempt = (method: string, name: string, rid: string) => method === 'PATCH'
      ? call(`${t.base}/Observation/${rid}`, { method, headers: { ...H.doc, 'content-type': 'application/json-patch+json' }, body: JSON.stringify(patch) })
      : call(`${t.base}/Observation/${rid}`, { method, headers: H.doc, ...(method === 'PUT' ? { json: { resourceType: 'Observation', id: rid, status: 'amended', code: { text: name }, subject: { reference: r('O', 'Patient') } } } : {}) });
    await allOf(['PUT', 'DELETE', 'PATCH'].flatMap((method) => ['obsC', 'obsK', 'obsLPsy'].map((n): [string, () => Promise<void>] => [`${method} ${n}`, async () => {
      const absent = randomUUID();
      sameAnswerAs(await attempt(method, n, id[n]), await attempt(method, n, absent), [id[n], absent], `${method} ${n}`);
    }])));
    for (const n of ['obsC']) {
      const still = await get(r(n), 'doc2');
      assert.equal(still.status, 200, `${n} was deleted`);
      assert.equal(still.body.meta.versionId, '1', `${n} was changed`);
    }
    for (const [n, who] of [['obsK', 'patK'], ['obsLPsy', 'patL']] as const) {
      const still = await get(r(n), who);
      assert.equal(still.status, 200, `${n} was deleted`);
      assert.equal(still.body.meta.versionId, '1', `${n} was changed`);
    }
  });

  test('conditional create / update / delete do not tell a withheld match from no match', async () => {
    const body = () => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: CODE, code: 'probe' }] }, subject: { reference: r('O', 'Patient') }, identifier: [{ system: IDSYS, value: `probe-${randomUUID()}` }] });
    await allOf(['c-code', 'k-code', 'lpsy-code'].flatMap((code): [string, () => Promise<void>][] => {
      const hidden = `${IDSYS}|${code}`;
      const none = `${IDSYS}|nohit-${randomUUID()}`;
      const blank = [encodeURIComponent(hidden), encodeURIComponent(none), hidden, none, code, none.split('|')[1]];
      return [
        [`conditional create ${code}`, async () => {
          const post = (c: string) => call(`${t.base}/Observation`, { method: 'POST', headers: { ...H.doc, 'if-none-exist': `identifier=${c}` }, json: body() });
          sameAnswerAs(await post(hidden), await post(none), blank, 'conditional create');
        }],
        [`conditional update ${code}`, async () => {
          const put = (c: string) => call(`${t.base}/Observation?identifier=${encodeURIComponent(c)}`, { method: 'PUT', headers: H.doc, json: body() });
          sameAnswerAs(await put(hidden), await put(none), blank, 'conditional update');
        }],
        [`conditional delete ${code}`, async () => {
          const del = (c: string) => call(`${t.base}/Observation?identifier=${encodeURIComponent(c)}`, { method: 'DELETE', headers: H.doc });
          sameAnswerAs(await del(hidden), await del(none), blank, 'conditional delete');
        }],
      ];
    }));
    // A transaction's conditional reference to a withheld patient fails like one to nobody.
    const tx = (criteria: string) => call(t.base, { method: 'POST', headers: H.doc, json: { resourceType: 'Bundle', type: 'transaction', entry: [
      { request: { method: 'POST', url: 'Observation' }, resource: { ...body(), subject: { reference: `Patient?identifier=${criteria}` } } },
    ] } });
    sameAnswerAs(await tx(`${IDSYS}|C-1`), await tx(`${IDSYS}|Z-9`), [`${IDSYS}|C-1`, `${IDSYS}|Z-9`], 'conditional reference');
    assert.equal((await get(r('obsC'), 'doc2')).body.meta.versionId, '1', 'obsC untouched');
    assert.equal((await get(r('obsK'), 'patK')).body.meta.versionId, '1', 'obsK untouched');
    assert.equal((await get(r('obsLPsy'), 'patL')).body.meta.versionId, '1', 'obsLPsy untouched');
  });
});

/**
 * The de-identified view: a researcher must not learn or use a real id (reads, _id, references,
 * messages, links, fullUrls, cursors, headers), nor a detail the view hides (names, exact dates,
 * city, postcode, identifiers, phone), by searching or sorting on it: such a search is refused, or
 * answers the same for the true value as for a false one.
 */
describe('leakage: de-identified view (researcher)', () => {
  const t = useIssuerServer();
  let id: Record<string, string>;
  let researcher: Record<string, string>;
  let system: Record<string, string>;
  /** pseudonyms by name, as the researcher's own searches show them */
  const pseudo: Record<string, string> = {};
  /** Everything the view must never show: real ids, exact stored times, and the hidden details. */
  let secrets: string[] = [];
  const get = (path: string): Promise<Reply> => call(`${t.base}/${path}`, { headers: researcher });
  const revealed = (text: string) => secrets.filter((s) => text.includes(s));
  /** Every header value of a reply, as `name: value` lines. */
  const headerLines = (res: Reply) => [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');

  before(async () => {
    ({ id } = await seedResearchWorld(t));
    researcher = await t.auth('researcher', 'user/*.rs');
    system = await t.auth('system');
    // Pseudonyms: matched through what the researcher can see (R1 and R2 share a birth year; R1 has the res-b Observation).
    const withB = await get('Observation?code=http://loinc.org|res-b&_include=Observation:subject');
    pseudo.R1 = withB.body.entry.find((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'Patient').resource.id;
    pseudo.o3 = withB.body.entry.find((e: { resource: { resourceType: string } }) => e.resource.resourceType === 'Observation').resource.id;
    const a = await get(`Observation?code=http://loinc.org|res-a&subject=Patient/${pseudo.R1}`);
    pseudo.o1 = a.body.entry[0].resource.id;
    pseudo.R5 = (await get('Patient?birthdate=1970')).body.entry[0].resource.id;
    pseudo.R3 = (await get('Patient?birthdate=1975')).body.entry[0].resource.id;
    const stored = await Promise.all(['R1', 'R2', 'R3', 'R5', 'o1', 'o2', 'o3', 'o4'].map(async (n) => {
      const type = n.startsWith('R') ? 'Patient' : 'Observation';
      return (await call(`${t.base}/${type}/${id[n]}`, { headers: system })).body?.meta?.lastUpdated as string | undefined;
    }));
    secrets = [
      ...Object.entries(id).filter(([n]) => n !== 'cR3').map(([, v]) => v),
      ...stored.filter((s): s is string => !!s),
      RES.family, RES.given, RES.birthDate, RES.city, RES.postalCode, RES.ssn, RES.phone, RES.effective.slice(0, 10), 'Hidden Lane',
    ];
  });

  test('controls: the view serves pseudonyms, and they work', async () => {
    assert.ok(pseudo.R1 && pseudo.R1 !== id.R1);
    assert.equal((await get(`Patient/${pseudo.R1}`)).status, 200);
    const obs = await get(`Observation?subject=Patient/${pseudo.R1}&_total=accurate`);
    assert.equal(obs.body.total, 2);
    assert.equal((await get(`Patient?_id=${pseudo.R1}&_total=accurate`)).body.total, 1);
  });

  /** Each probe with the real id and with an id that never existed: the answers must not differ. */
  const realIdProbes = (probes: [string, (x: string) => string][], real: (what: string) => string) => allOf(probes.map(([what, path]): [string, () => Promise<void>] => [what, async () => {
    const absent = randomUUID();
    const withReal = await get(path(real(what)));
    const none = await get(path(absent));
    sameAnswerAs(withReal, none, [id.R1, id.o1, absent], what);
    if (withReal.status === 200) {
      assert.equal(withReal.body.total ?? 0, none.body.total ?? 0, `total ${withReal.body.total} with the real id`);
      assert.deepEqual(refs(withReal), refs(none), 'the real id found something');
    }
  }]));

  test('a real id does not read', () => realIdProbes([
    ['read Patient', (x) => `Patient/${x}`],
    ['read Observation', (x) => `Observation/${x}`],
  ], (what) => (what === 'read Observation' ? id.o1 : id.R1)));

  test('a real id does not work where a pseudonym does: _id, references (typed, bare, absolute, with a type modifier), includes', async () => {
    const probes: [string, (x: string) => string][] = [
      ['_id', (x) => `Patient?_id=${x}&_total=accurate`],
      ['_id count', (x) => `Patient?_id=${x}&_summary=count`],
      ['subject=Patient/id', (x) => `Observation?subject=Patient/${x}&_total=accurate`],
      ['subject=id', (x) => `Observation?subject=${x}&_total=accurate`],
      ['subject:Patient=id', (x) => `Observation?subject:Patient=${x}&_total=accurate`],
      ['patient=id', (x) => `Observation?patient=${x}&_total=accurate`],
      ['subject=<base>/Patient/id', (x) => `Observation?subject=${encodeURIComponent(`${t.base}/Patient/${x}`)}&_total=accurate`],
      ['_revinclude', (x) => `Patient?_id=${x}&_revinclude=Observation:subject`],
    ];
    await realIdProbes(probes, () => id.R1);
  });

  test('nothing the researcher is shown carries a real id, an exact time or a hidden detail (bodies, fullUrls, links, cursors, headers)', async () => {
    const paths = [
      `Patient/${pseudo.R1}`, `Observation/${pseudo.o1}`,
      `Observation?code=http://loinc.org|res-a&_include=Observation:subject&_total=accurate`,
      `Observation?code=http://loinc.org|res-a&_count=1`,
      `Patient?birthdate=1961&_count=1&_total=accurate`,
      `Patient?_id=${pseudo.R1}&_revinclude=Observation:subject`,
      `Observation?subject=Patient/${pseudo.R1}&_summary=count`,
      `Patient?gender=female&_elements=birthDate,address&_count=1`,
      `Observation?subject=Patient/${pseudo.R1}&_sort=code&_count=1`,
    ];
    await allOf(paths.map((p): [string, () => Promise<void>] => [p, async () => {
      const res = await get(p);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(revealed(res.text), [], 'body');
      assert.deepEqual(revealed(headerLines(res)), [], 'headers');
      for (const h of ['etag', 'last-modified', 'location', 'content-location']) assert.equal(res.headers.get(h), null, h);
      // Continuation tokens are opaque to the eye, not to a decoder.
      for (const l of (res.body.link ?? []) as { url: string }[]) {
        const cursor = new URL(l.url).searchParams.get('_cursor');
        if (cursor) assert.deepEqual(revealed(Buffer.from(cursor, 'base64url').toString('utf8')), [], `${l.url}: _cursor decodes to ${Buffer.from(cursor, 'base64url').toString('utf8')}`);
      }
    }]));
  });

  test('error messages name pseudonyms, never real ids (a deleted resource, bad parameters, refused interactions)', async () => {
    assert.equal((await call(`${t.base}/Patient/${id.R5}`, { method: 'DELETE', headers: system })).status, 200);
    const paths = [
      `Patient/${pseudo.R5}`, `Observation?subject=Patient/${pseudo.R5}&_total=accurate`,
      `Patient/${pseudo.R1}/_history`, `Patient/${pseudo.R1}/_history/1`, `Patient/${pseudo.R1}/Observation`, `Patient/${pseudo.R1}/$everything`,
      `Observation?subject:bogus=Patient/${pseudo.R1}`, `Observation?subject=Patient/${pseudo.R1}&_count=x`,
      `Observation?subject=Patient/${pseudo.R1}&_cursor=e30`, `Patient?_id=${pseudo.R1}&_include=Patient:nothing`,
    ];
    await allOf(paths.map((p): [string, () => Promise<void>] => [p, async () => {
      const res = await get(p);
      assert.deepEqual(revealed(res.text), [], `${res.status} ${res.text}`);
      assert.deepEqual(revealed(headerLines(res)), [], 'headers');
    }]));
  });

  /** [true value, false value] pairs: refused alike, or the same total and matches for both (with _total=accurate and _summary=count). */
  const sameForTrueAndFalse = (pairs: [string, string][]) => allOf(pairs.flatMap(([yes, no]) => ['&_total=accurate', '&_summary=count'].map((suffix): [string, () => Promise<void>] => [`${yes}${suffix}`, async () => {
    const a = await get(`${yes}${suffix}`);
    const b = await get(`${no}${suffix}`);
    assert.ok(a.status === 403 || a.status === 400 || a.status === 200, `${a.status}: ${a.text}`);
    assert.equal(a.status, b.status, `status ${a.status} (true value) vs ${b.status} (false value): ${a.text.slice(0, 200)}`);
    if (a.status === 200) {
      assert.equal(a.body.total, b.body.total, `total ${a.body.total} (true value) vs ${b.body.total} (false value)`);
      assert.deepEqual(refs(a), refs(b), 'the matches differ');
    } else {
      assert.equal(a.body?.resourceType, 'OperationOutcome', a.text);
    }
  }])));

  test('searches on what the view hides are refused, or answer the same for the true value as for a false one', async () => {
    // [true value, false value]: an answer that differs between them tells the hidden value.
    const pairs: [string, string][] = [
      [`Patient?name=${RES.family}`, 'Patient?name=Nobodyfamily'],
      [`Patient?family=${RES.family}`, 'Patient?family=Nobodyfamily'],
      [`Patient?given=${RES.given}`, 'Patient?given=Nobodygiven'],
      [`Patient?birthdate=${RES.birthDate}`, 'Patient?birthdate=1961-07-15'],
      ['Patient?birthdate=1961-07', 'Patient?birthdate=1961-08'],
      ['Patient?birthdate=ge1961-07-14&birthdate=le1961-07-14', 'Patient?birthdate=ge1961-07-15&birthdate=le1961-07-15'],
      ['Patient?birthdate=sa1961-07-13&birthdate=eb1961-07-15', 'Patient?birthdate=sa1961-07-14&birthdate=eb1961-07-16'],
      [`Patient?address-city=${RES.city}`, 'Patient?address-city=Nowhere'],
      [`Patient?address=${RES.city}`, 'Patient?address=Nowhere'],
      [`Patient?address-city:contains=mallto`, 'Patient?address-city:contains=zzzz'],
      [`Patient?address-postalcode=${RES.postalCode}`, 'Patient?address-postalcode=09999'],
      [`Patient?identifier=http://hl7.org/fhir/sid/us-ssn|${RES.ssn}`, 'Patient?identifier=http://hl7.org/fhir/sid/us-ssn|999-00-0000'],
      [`Patient?identifier=${RES.ssn}`, 'Patient?identifier=999-00-0000'],
      [`Patient?phone=${RES.phone}`, 'Patient?phone=555-000-9999'],
      [`Patient?telecom=${RES.phone}`, 'Patient?telecom=555-000-9999'],
      [`Patient?_content=${RES.city}`, 'Patient?_content=Nowhere'],
      [`Patient?_text=${RES.family}`, 'Patient?_text=Nobodyfamily'],
      [`Observation?date=${RES.effective.slice(0, 10)}`, 'Observation?date=2020-03-05'],
      ['Observation?date=ge2020-03-04T10:11:12Z&date=le2020-03-04T10:11:12Z', 'Observation?date=ge2020-03-04T10:11:13Z&date=le2020-03-04T10:11:13Z'],
      [`Observation?subject.name=${RES.family}`, 'Observation?subject.name=Nobodyfamily'],
      [`Patient?_has:Observation:subject:date=${RES.effective.slice(0, 10)}`, 'Patient?_has:Observation:subject:date=2020-03-05'],
      [`Patient?_filter=${encodeURIComponent(`address-city eq ${RES.city}`)}`, `Patient?_filter=${encodeURIComponent('address-city eq Nowhere')}`],
      [`Patient?_id=${pseudo.R1}&_lastUpdated=ge2000-01-01T00:00:00Z`, `Patient?_id=${pseudo.R1}&_lastUpdated=ge2100-01-01T00:00:00Z`],
    ];
    await sameForTrueAndFalse(pairs);
  });

  test('chains typed with the target (subject:Patient.x) are refused like other chains', () => sameForTrueAndFalse([
    [`Observation?subject:Patient.birthdate=${RES.birthDate}`, 'Observation?subject:Patient.birthdate=1961-07-15'],
    [`Observation?subject:Patient.name=${RES.family}`, 'Observation?subject:Patient.name=Nobodyfamily'],
    [`Observation?patient:Patient.address-city=${RES.city}`, 'Observation?patient:Patient.address-city=Nowhere'],
    [`Observation?subject:Patient.address-postalcode=${RES.postalCode}`, 'Observation?subject:Patient.address-postalcode=09999'],
    [`Observation?subject:Patient.identifier=${RES.ssn}`, 'Observation?subject:Patient.identifier=999-00-0000'],
    [`Observation?subject:Patient.phone=${RES.phone}`, 'Observation?subject:Patient.phone=555-000-9999'],
  ]));

  test('sorting by what the view hides does not reveal its order', async () => {
    const order = async (q: string) => {
      const res = await get(q);
      return res.status === 200 ? (res.body.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id) : res.status;
    };
    // Two patients born in 1961 (July and November), two res-a Observations seen (March and September 2020).
    await allOf([
      ['Patient?birthdate=1961&_sort=birthdate', 'Patient?birthdate=1961&_sort=-birthdate'],
      ['Patient?birthdate=1961&_sort=family', 'Patient?birthdate=1961&_sort=-family'],
      ['Patient?birthdate=1961&_sort=address-city', 'Patient?birthdate=1961&_sort=-address-city'],
      ['Patient?birthdate=1961&_sort=_lastUpdated', 'Patient?birthdate=1961&_sort=-_lastUpdated'],
      ['Patient?birthdate=1961&_sort=_id', 'Patient?birthdate=1961&_sort=-_id'],
      ['Observation?code=http://loinc.org|res-a&_sort=date', 'Observation?code=http://loinc.org|res-a&_sort=-date'],
      ['Observation?code=http://loinc.org|res-a&_sort=subject', 'Observation?code=http://loinc.org|res-a&_sort=-subject'],
    ].map(([up, down]): [string, () => Promise<void>] => [up, async () => {
      const a = await order(up);
      const b = await order(down);
      // Honest: refused both ways, or one order whichever way it is asked.
      if (typeof a === 'number' || typeof b === 'number') assert.equal(a, b, 'one direction refused, the other not');
      else {
        assert.equal(a.length, 2, `control: two matches (${a.length})`);
        assert.deepEqual(a, b, 'the order follows the hidden value');
      }
    }]));
  });

  test('a Consent withholds from the researcher too, in counts and includes', async () => {
    const count = await get('Observation?code=http://loinc.org|res-a&_summary=count');
    assert.equal(count.status, 200, count.text);
    assert.equal(count.body.total, 2, 'R3\'s Observation is withheld by her Consent (deny class Observation)');
    const acc = await get('Observation?code=http://loinc.org|res-a&_total=accurate');
    assert.equal(acc.body.total, 2);
    assert.equal(acc.body.entry.length, 2);
    const rev = await get(`Patient?_id=${pseudo.R3}&_revinclude=Observation:subject`);
    assert.equal(rev.status, 200, rev.text);
    assert.deepEqual(refs(rev, 'include'), [], 'nor through _revinclude');
    assert.equal((await get(`Observation?subject=Patient/${pseudo.R3}&_summary=count`)).body.total, 0);
  });
});
