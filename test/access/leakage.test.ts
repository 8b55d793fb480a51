import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { call, type Reply } from '../rest/server.ts';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { CODE, IDSYS, conf, diagnostics, refs, seedWorld, type World } from './leakage-seed.ts';

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
  /** A hidden thing's answer must not differ from a nonexistent thing's (status and message, ids blanked). */
  const sameAnswer = (hidden: Reply, absent: Reply, blank: string[], what: string) => {
    assert.equal(hidden.status, absent.status, `${what}: status ${hidden.status} (hidden) vs ${absent.status} (nonexistent)\n${hidden.text}\n${absent.text}`);
    assert.equal(diagnostics(hidden.body, blank), diagnostics(absent.body, blank), `${what}: the messages differ`);
  };
  /** Runs every check and fails once with all the failures, so a report names every leaking probe. */
  const all = async (checks: [string, () => Promise<void> | void][]) => {
    const failed: string[] = [];
    for (const [name, check] of checks) {
      try {
        await check();
      } catch (err) {
        failed.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    assert.deepEqual(failed, []);
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
    for (const [q, bySystem] of probes) {
      assert.deepEqual(refs(await get(q, 'system')), [...bySystem].sort(), `control: the system sees ${q}`);
      const res = await get(`${q}&_total=accurate`, 'doc');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(refs(res), [], q);
      assert.equal(res.body.total, 0, `${q} _total=accurate`);
      assert.equal(await total(`${q}&_summary=count`, 'doc'), 0, `${q} _summary=count`);
    }
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
    for (const [q, bySystem] of probes) {
      assert.deepEqual(refs(await get(q, 'system')), [...bySystem].sort(), `control: the system sees ${q}`);
      const res = await get(`${q}&_total=accurate`, 'doc');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(refs(res), [], q);
      assert.equal(res.body.total, 0, `${q} _total=accurate`);
      assert.equal(await total(`${q}&_summary=count`, 'doc'), 0, `${q} _summary=count`);
    }
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
        sameAnswer(hid, await get(`Observation/${absent}${v}`, who), [hidden, absent], `${who} ${v || 'read'}`);
      }
      const inst = await get(`Observation/${hidden}/_history`, who);
      assert.ok(!inst.text.includes(hidden), `${who} instance history shows ${hidden}: ${inst.text}`);
      sameAnswer(inst, await get(`Observation/${absent}/_history`, who), [hidden, absent], `${who} instance history`);
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
      sameAnswer(pHidden, await put(none), blank, `conditional update (${code})`);
      const cHidden = await post(hidden);
      assert.equal(cHidden.status, 201, `conditional create (${code}) ${cHidden.text}`);
      sameAnswer(cHidden, await post(none), blank, `conditional create (${code})`);
      const dHidden = await del(hidden);
      assert.equal(dHidden.status, 200, `conditional delete (${code}) ${dHidden.text}`);
      sameAnswer(dHidden, await del(none), blank, `conditional delete (${code})`);
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
    sameAnswer(await tx(`${IDSYS}|B-1`), await tx(`${IDSYS}|Z-9`), [`${IDSYS}|B-1`, `${IDSYS}|Z-9`], 'conditional reference');
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
      sameAnswer(hid, await get(`${type}/${absent}`, who), [path.split('/')[1], absent], `${who} ${path}`);
    }
    const denied = await get(r('obsA'), 'billing');
    assert.equal(denied.status, 403, denied.text);
    isOutcome(denied);
    const deniedAbsent = await get(`Observation/${absent}`, 'billing');
    sameAnswer(denied, deniedAbsent, [id.obsA, absent], 'billing read of a type it may not read');
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
    await all(['Patient?address-city=Alphaville', 'Patient?phone=555-0101', 'Patient?telecom=555-0101', 'Patient?address=Alphaville',
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
    await all(['obsB', 'obsAV'].map((n): [string, () => Promise<void>] => [n, async () => {
      const absent = randomUUID();
      sameAnswer(await attempt(id[n]), await attempt(absent), [id[n], absent], `${method} ${n}`);
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
