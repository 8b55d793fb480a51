import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { call, type Reply } from '../rest/server.ts';
import { useIssuerServer } from '../auth/external-issuer.ts';
import { parseSearch } from '../../src/fhir/search/parse.ts';
import { TAG, resourceOf, seedMatrix, type ProvisionSeed, type Side, type Target, type TargetSpec, type World } from './decision-matrix-seed.ts';

/**
 * The access engine's decision matrix: roles x interactions x resource types x relationship x
 * security labels x break-the-glass x consent, every cell its own test against a live server.
 * The expectations come from decision-matrix.json (the rules as data), never from the server's
 * own access code. A cell whose answer contradicts its rule is listed there under `mismatches`
 * and runs as a todo, so it reports without failing the build. Each consent value (rules 6-10)
 * runs against a server and world of its own (decision-matrix-seed.ts), so no cell meets another
 * value's Consent or another world's break-the-glass grants.
 */

interface RoleSpec {
  scopes: string;
  token: 'patient' | 'user' | 'client';
  relationship: 'clinician' | 'own-compartment' | 'none';
  breakGlass: boolean;
  clearance: { max: string; sensitivities: string[] | '*' };
  permissions: Record<string, string>;
  statusOnly?: string;
}

type Interaction = 'read' | 'search' | 'create' | 'update' | 'delete';
type Outcome = number | { status: number; total: number };

interface Matrix {
  axes: {
    role: string[];
    interaction: Interaction[];
    type: string[];
    relationship: Record<string, string[]>;
    label: string[];
    btg: boolean[];
    consent: string[];
  };
  labels: Record<string, [string, string][]>;
  confidentialityOrder: string[];
  patientCompartment: { members: string[] };
  roles: Record<string, RoleSpec>;
  permissionOf: Record<Interaction, string>;
  outcomes: Record<Interaction, { reachable: Outcome; hidden: Outcome }> & { denied: number };
  consent: { actors: Record<string, string[]> } & Record<string, ConsentRule | Record<string, string[]>>;
  mismatches: Record<string, string>;
}

/** One consent value (rule 7): the Consent seeded for its patients, and what it withholds from whom. */
interface ConsentRule {
  seed: ProvisionSeed | null;
  withholds: null | {
    from: 'everyone' | { actor: string } | { allBut: string };
    types: '*' | string[];
    labels: '*' | string[];
  };
}

interface Cell {
  role: string;
  interaction: Interaction;
  type: string;
  relationship: string;
  label: string;
  btg: boolean;
  consent: string;
}

interface Expected {
  status: number;
  /** Whether the target is reached (reads return it, searches count it, writes take effect). */
  reachable: boolean;
  /** Searches: the exact total (_total=accurate); undefined when only the status is asserted. */
  total?: number;
}

const spec = JSON.parse(readFileSync(new URL('./decision-matrix.json', import.meta.url), 'utf8')) as Matrix;
const members = new Set(spec.patientCompartment.members);

const consentRule = (value: string): ConsentRule => {
  const rule = spec.consent[value] as ConsentRule | undefined;
  assert.ok(value !== 'actors' && rule && 'withholds' in rule, `decision matrix: no rule for consent=${value}`);
  return rule;
};

/** Rules 1 and 2: refused whatever the target. */
function refusedOutright(role: string, interaction: Interaction, type: string, btg: boolean): boolean {
  const r = spec.roles[role];
  return (btg && !r.breakGlass) || !(r.permissions[type] ?? '').includes(spec.permissionOf[interaction]);
}

/** Rule 9: where the consent axis means something (beyond none). */
function consentApplies(role: string, interaction: Interaction, type: string, btg: boolean): boolean {
  return !refusedOutright(role, interaction, type, btg) && members.has(type) && !(type === 'Patient' && interaction === 'create');
}

/** Every cell: the cross product of the axes, the relationship axis taking the values that mean something for the role and type. */
function expand(m: Matrix): Cell[] {
  const cells: Cell[] = [];
  for (const role of m.axes.role) {
    const r = m.roles[role];
    assert.ok(r, `no rules for role ${role}`);
    for (const type of m.axes.type) {
      const relationships = m.axes.relationship[members.has(type) ? r.relationship : 'outside-compartment'];
      for (const interaction of m.axes.interaction) {
        for (const relationship of relationships) {
          for (const label of m.axes.label) {
            for (const btg of m.axes.btg) {
              for (const consent of m.axes.consent) {
                consentRule(consent);
                if (consent === 'none' || consentApplies(role, interaction, type, btg)) cells.push({ role, interaction, type, relationship, label, btg, consent });
              }
            }
          }
        }
      }
    }
  }
  return cells;
}

/** Whose record the cell's target is in (see decision-matrix-seed.ts). */
function sideOf(c: Cell): Side {
  switch (c.relationship) {
    case 'related': case 'own': return 'rel';
    case 'unrelated': case 'other': case 'none-needed': return 'unrel';
    case 'n/a': return 'none';
    default: throw new Error(`unknown relationship ${c.relationship}`);
  }
}

/** Whether labels are within a clearance: confidentiality at most max (none counts as N), every sensitivity cleared. */
function cleared(clearance: RoleSpec['clearance'], labels: [string, string][]): boolean {
  const order = spec.confidentialityOrder;
  for (const [kind, code] of labels) {
    if (kind === 'confidentiality' && order.indexOf(code) > order.indexOf(clearance.max)) return false;
    if (kind === 'sensitivity' && clearance.sensitivities !== '*' && !clearance.sensitivities.includes(code)) return false;
  }
  return true;
}

/** Whether the roles an actor key of the matrix file names include this one. */
const names = (key: string, role: string): boolean => {
  const roles = spec.consent.actors[key];
  assert.ok(Array.isArray(roles), `decision matrix: no actor ${key}`);
  return roles.includes(role);
};

/** Rules 6-8: whether the cell's Consent withholds its target from its role. */
function consentHides(c: Cell): boolean {
  const w = consentRule(c.consent).withholds;
  if (!w) return false;
  const r = spec.roles[c.role];
  // Rule 8: the patient's own access, and break-the-glass for the target's patient, are not subject.
  if (r.relationship === 'own-compartment' && c.relationship === 'own') return false;
  if (c.btg && r.breakGlass && members.has(c.type)) return false;
  // Rule 7: only records of a patient (a Patient being created has no consent yet).
  if (!members.has(c.type) || (c.type === 'Patient' && c.interaction === 'create')) return false;
  const from = w.from === 'everyone' || ('actor' in w.from ? names(w.from.actor, c.role) : !names(w.from.allBut, c.role));
  const type = w.types === '*' || w.types.includes(c.type);
  const carried = spec.labels[c.label];
  const label = w.labels === '*' || w.labels.some((key) => spec.labels[key].some(([kind, code]) => carried.some(([k, v]) => k === kind && v === code)));
  return from && type && label;
}

/** The cell's expected answer, from the rules in decision-matrix.json (see its "rules"). */
function expected(c: Cell): Expected {
  const r = spec.roles[c.role];
  // Rules 1 and 2.
  if (refusedOutright(c.role, c.interaction, c.type, c.btg)) return { status: spec.outcomes.denied, reachable: false };
  // Rule 3.
  const inCompartment = members.has(c.type);
  const btgCovers = c.btg && inCompartment && !(c.type === 'Patient' && c.interaction === 'create');
  let reachable = true;
  if (r.relationship === 'own-compartment' && !(inCompartment && c.relationship === 'own')) reachable = false;
  if (r.relationship === 'clinician' && inCompartment && c.relationship !== 'related' && !btgCovers) reachable = false;
  if (!cleared(r.clearance, spec.labels[c.label]) && !btgCovers) reachable = false;
  // Rules 6-8.
  if (consentHides(c)) reachable = false;
  // Rule 4.
  const o = spec.outcomes[c.interaction][reachable ? 'reachable' : 'hidden'];
  const out: Expected = typeof o === 'number' ? { status: o, reachable } : { ...o, reachable };
  if (r.statusOnly) delete out.total;
  return out;
}

const cellName = (c: Cell) => `${c.role} ${c.interaction} ${c.type} ${c.relationship} label=${c.label} btg=${c.btg ? 'yes' : 'no'} consent=${c.consent}`;
const expectName = (e: Expected) => (e.total === undefined ? `${e.status}` : `${e.status} total=${e.total}`);
/** Reads and searches share one target per type, side and label; writes get their own. */
const sharedKey = (c: Cell) => `${c.type}|${sideOf(c)}|${c.label}`;
const ownsTarget = (c: Cell) => c.interaction === 'update' || c.interaction === 'delete';
const targetKey = (c: Cell) => (ownsTarget(c) ? cellName(c) : sharedKey(c));

const cells = expand(spec);
const cellIndex = new Map(cells.map((c, i) => [c, i]));
const unknownMismatches = Object.keys(spec.mismatches).filter((k) => k !== '//' && !cells.some((c) => cellName(c) === k));
assert.deepEqual(unknownMismatches, [], 'every listed mismatch names a cell');

const BTG_REASON = 'Decision matrix: patient unconscious in the emergency department, no GP reachable';

/** One consent value's cells, against a server and world of their own. */
const consentWorld = (consent: string, worldCells: Cell[]) => describe(`consent=${consent}`, () => {
  const t = useIssuerServer();
  let world: World;
  let targets: Map<string, Target>;
  const tokens = new Map<string, Promise<Record<string, string>>>();
  const token = (key: string, mint: () => Promise<Record<string, string>>) => {
    let p = tokens.get(key);
    if (!p) tokens.set(key, (p = mint()));
    return p;
  };

  before(async () => {
    const specs = new Map<string, TargetSpec>();
    for (const c of worldCells) {
      if (c.interaction === 'create') continue;
      const key = targetKey(c);
      if (!specs.has(key)) specs.set(key, { key, type: c.type, side: sideOf(c), label: c.label });
    }
    ({ world, targets } = await seedMatrix(t, [...specs.values()], spec.labels, consentRule(consent).seed));
  });

  /** The patient of the cell's side (an Organization's cells: the unrelated one, never used). */
  const sidePatient = (c: Cell): string => (sideOf(c) === 'rel' ? world.rel : world.unrel);

  /** The patient whose compartment the cell is about: the target Patient itself, or the side's patient. */
  const patientOf = (c: Cell, target: Target | undefined): string => target?.patient ?? sidePatient(c);

  const headersFor = async (c: Cell, target: Target | undefined): Promise<Record<string, string>> => {
    const r = spec.roles[c.role];
    let auth: Record<string, string>;
    if (r.token === 'client') auth = await token('system', () => t.auth('system', r.scopes));
    else if (r.token === 'patient') {
      // The patient's own record: the target Patient itself, else the GP's patient (so "other" is the unrelated one).
      const own = c.type === 'Patient' && c.relationship === 'own' && target ? target.id : world.rel;
      auth = await token(`patient|${own}`, () => t.auth('patient', r.scopes, { patient: own }));
    } else auth = await token(c.role, () => t.auth(c.role, r.scopes, r.relationship === 'clinician' ? { fhirUser: world.doc } : {}));
    return c.btg ? { ...auth, 'x-break-glass-patient': patientOf(c, target), 'x-break-glass-reason': BTG_REASON } : auth;
  };

  /** The tag of what a create cell creates (so the system can look for it afterwards). */
  const createdTag = (c: Cell) => `created-${cellIndex.get(c)}`;

  /** The cell's one request, as its role, to its target (none for a create). */
  const send = async (c: Cell, target: Target | undefined): Promise<Reply> => {
    const headers = await headersFor(c, target);
    const url = `${t.base}/${c.type}`;
    switch (c.interaction) {
      case 'read': {
        let id = target!.id;
        // Researchers address resources by the ids they are shown (pseudonyms, once de-identification is in).
        if (spec.roles[c.role].statusOnly) {
          const shown = await call(`${url}?_tag=${encodeURIComponent(`${TAG}|${target!.tag}`)}`, { headers });
          id = shown.body?.entry?.[0]?.resource?.id ?? id;
        }
        return call(`${url}/${id}`, { headers });
      }
      case 'search':
        return call(`${url}?_tag=${encodeURIComponent(`${TAG}|${target!.tag}`)}&_total=accurate`, { headers });
      case 'create':
        return call(url, { method: 'POST', headers, json: resourceOf(c.type, world, sideOf(c), sidePatient(c), createdTag(c), spec.labels[c.label]) });
      case 'update':
        return call(`${url}/${target!.id}`, { method: 'PUT', headers, json: { ...target!.resource, language: 'en' } });
      case 'delete':
        return call(`${url}/${target!.id}`, { method: 'DELETE', headers });
    }
  };

  /**
   * What the witness of rule 5 sees: the system token (rule 5), or for consent cells the store
   * itself (rule 10): how many resources carry a tag, and the current version of type/id.
   */
  const witness = {
    async count(c: Cell, tag: string): Promise<number | undefined> {
      if (c.consent !== 'none') {
        const { request } = parseSearch(c.type, [['_tag', `${TAG}|${tag}`], ['_total', 'accurate']], { maxCount: 10, defaultCount: 10, lenient: false });
        return (await t.server.store.search(request)).total;
      }
      const system = await token('system', () => t.auth('system', spec.roles.system.scopes));
      return (await call(`${t.base}/${c.type}?_tag=${encodeURIComponent(`${TAG}|${tag}`)}&_total=accurate`, { headers: system })).body?.total;
    },
    async current(c: Cell, id: string): Promise<{ status: number; text: string; body: { language?: string } }> {
      if (c.consent !== 'none') {
        const stored = await t.server.store.read(c.type, id);
        if (!stored || stored.deleted || stored.json === undefined) return { status: stored ? 410 : 404, text: 'not in the store', body: {} };
        return { status: 200, text: stored.json, body: JSON.parse(stored.json) as { language?: string } };
      }
      const system = await token('system', () => t.auth('system', spec.roles.system.scopes));
      return call(`${t.base}/${c.type}/${id}`, { headers: system });
    },
  };

  /** Rule 5, checked by the witness (rule 10): created, changed or deleted exactly when reachable. */
  const assertEffect = async (c: Cell, want: Expected, target: Target | undefined) => {
    if (c.interaction === 'read' || c.interaction === 'search') return;
    if (c.interaction === 'create') {
      assert.equal(await witness.count(c, createdTag(c)), want.reachable ? 1 : 0, `create: ${want.reachable ? 'not created' : 'created anyway'}`);
      return;
    }
    const now = await witness.current(c, target!.id);
    if (c.interaction === 'delete') {
      if (want.reachable) assert.ok(now.status === 410 || now.status === 404, `delete: still there (${now.status})`);
      else assert.equal(now.status, 200, `delete: the target is gone (${now.status})`);
    } else {
      assert.equal(now.status, 200, now.text);
      assert.equal(now.body.language, want.reachable ? 'en' : undefined, `update: ${want.reachable ? 'not changed' : 'changed anyway'}`);
    }
  };

  // Break-the-glass access lasts beyond the request that asked for it (for that user): the cells
  // without it run first, then those with it.
  for (const btg of [false, true]) {
    describe(`btg=${btg ? 'yes' : 'no'}`, { concurrency: 16 }, () => {
      for (const c of worldCells.filter((x) => x.btg === btg)) {
        const name = cellName(c);
        const want = expected(c);
        const mismatch = spec.mismatches[name];
        test(`${name} -> ${expectName(want)}`, mismatch ? { todo: `MISMATCH: ${mismatch}` } : {}, async () => {
          const target = c.interaction === 'create' ? undefined : targets.get(targetKey(c));
          if (c.interaction !== 'create') assert.ok(target, `no target seeded for ${targetKey(c)}`);
          const res = await send(c, target);
          // Rule 5 first: whatever the status, a write takes effect exactly when the target is reachable.
          await assertEffect(c, want, target);
          const got = res.status === 200 && c.interaction === 'search' ? `${res.status} total=${res.body?.total}` : `${res.status}`;
          assert.equal(res.status, want.status, `${name}: expected ${expectName(want)}, got ${got}: ${res.text.slice(0, 300)}`);
          if (want.total !== undefined) assert.equal(res.body?.total, want.total, `${name}: expected ${expectName(want)}, got ${got}`);
          // What comes back is the target itself (not for researchers: their view is being de-identified).
          if (!spec.roles[c.role].statusOnly && want.reachable) {
            if (c.interaction === 'read') assert.equal(res.body?.id, target!.id);
            if (c.interaction === 'search') assert.deepEqual(res.body?.entry?.map((e: { resource: { id: string } }) => e.resource.id), [target!.id]);
          }
        });
      }
    });
  }
});

describe('access decision matrix', () => {
  for (const consent of spec.axes.consent) consentWorld(consent, cells.filter((c) => c.consent === consent));
});
