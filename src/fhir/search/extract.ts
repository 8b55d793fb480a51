import type { Resource } from '../types.ts';
import { compositeEvaluatorFor, evaluatorFor, type CompositeEvaluator, type Evaluator } from './evaluate.ts';
import { componentKey, componentsOf, compositeUnionOf, ofTypeKey, paramKey, searchParamsOf, type CompositeComponent, type SearchParam } from './params.ts';
import type { SearchParamType } from './types.ts';
import { soundexWords } from './phonetic.ts';
import type { TypedValue } from './path.ts';
import {
  dateValues, identifierTypeValues, numberValues, quantityValues, referenceValues, stringValues, tokenValues, uriValues,
  type QuantityIndexValue, type RangeValue, type ReferenceIndexValue, type StringValue, type TokenIndexValue,
} from './index-values.ts';

/**
 * The search index rows of one resource, store-independent. `key` is the parameter's index key
 * (see paramKey). Duplicates are removed, so a store may insert the rows as they are.
 */
export interface IndexRows {
  string: (StringValue & Keyed)[];
  token: (TokenIndexValue & Keyed)[];
  reference: (ReferenceIndexValue & Keyed)[];
  date: (RangeValue & Keyed)[];
  number: (RangeValue & Keyed)[];
  quantity: (QuantityIndexValue & Keyed)[];
  uri: ({ uri: string } & Keyed)[];
}

/**
 * `grp`: the parts of a composite parameter found on one base node (one Observation.component)
 * share a group number, so a search can ask for a code and a value from the same component.
 */
interface Keyed { key: number; grp?: number }

/** `_id` and `_lastUpdated` are columns of the resource table; special parameters are not indexed (yet). */
const fromResourceTable = new Set(['_id', '_lastUpdated']);

interface Plan { param: SearchParam; key: number; components?: { part: CompositeComponent; key: number }[] }

const plans = new Map<string, Plan[]>();

function planFor(resourceType: string): Plan[] {
  let plan = plans.get(resourceType);
  if (!plan) {
    plan = [...searchParamsOf(resourceType).values()]
      .filter((p) => p.expression !== undefined && !fromResourceTable.has(p.code) && (p.type !== 'special' || p.code === 'near'))
      // A composite that is the union of others is searched through theirs.
      .filter((p) => p.type !== 'composite' || compositeUnionOf(resourceType, p) === undefined)
      .map((param): Plan => {
        const key = paramKey(param.base, param.code);
        if (param.type !== 'composite') return { param, key };
        return { param, key, components: componentsOf(param).map((part, i) => ({ part, key: componentKey(param.base, param.code, i) })) };
      })
      .filter((p) => p.components === undefined || p.components.length > 0);
    plans.set(resourceType, plan);
  }
  return plan;
}

/** The evaluators are replaceable so tests can compare the fast path with the full FHIRPath engine. */
export function extractIndexRows(
  resource: Resource,
  evaluator: (resourceType: string, param: SearchParam) => Evaluator = evaluatorFor,
  composite: (resourceType: string, param: SearchParam, parts: readonly CompositeComponent[]) => CompositeEvaluator = compositeEvaluatorFor,
): IndexRows {
  const rows: IndexRows = { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [] };
  const seen = new Set<string>();
  const add = <T extends Keyed>(table: T[], tableName: string, row: T, identity: string): void => {
    const id = `${tableName}\u0000${row.key}\u0000${row.grp ?? ''}\u0000${identity}`;
    if (seen.has(id)) return;
    seen.add(id);
    table.push(row);
  };
  for (const { param, key, components } of planFor(resource.resourceType)) {
    if (components) {
      addComposite(composite(resource.resourceType, param, components.map((c) => c.part))(resource), components, rows, add);
      continue;
    }
    const values = evaluator(resource.resourceType, param)(resource);
    if (values.length === 0) continue;
    if (param.type === 'special') {
      addPositions(param, values, rows, add);
      continue;
    }
    if (param.code === 'phonetic' && param.type === 'string') {
      addPhonetic(key, values, rows, add);
      continue;
    }
    addValues(param.type, key, values, rows, add);
    if (param.type === 'token') addIdentifierTypes(ofTypeKey(param.base, param.code), values, rows, add);
  }
  return rows;
}

type Add = <T extends Keyed>(table: T[], tableName: string, row: T, identity: string) => void;

/** Each base node of a composite parameter: its parts' values, under the parts' keys, in a group of their own. */
function addComposite(nodes: TypedValue[][][], components: { part: CompositeComponent; key: number }[], rows: IndexRows, add: Add): void {
  nodes.forEach((partValues, n) => {
    // A node lacking a part can never match a search for it; its other parts need no rows.
    if (partValues.some((values) => values.length === 0)) return;
    const grp = n + 1;
    // A part is matched on code (and system): its text-only token rows would never be used.
    const grouped: Add = (table, tableName, row, identity) => {
      if (tableName === 't' && (row as unknown as TokenIndexValue).code === null) return;
      add(table, tableName, { ...row, grp }, identity);
    };
    components.forEach(({ part, key }, i) => addValues(part.type, key, partValues[i], rows, grouped));
  });
}

/**
 * `near` (Location.position): latitude and longitude as numbers under keys of their own, in one
 * group per position, as a composite's parts are (search-sql.ts nearSql).
 */
function addPositions(param: SearchParam, values: TypedValue[], rows: IndexRows, add: Add): void {
  const [latKey, lonKey] = [0, 1].map((i) => componentKey(param.base, param.code, i));
  values.forEach(({ value }, n) => {
    const p = value as { latitude?: unknown; longitude?: unknown };
    if (typeof p?.latitude !== 'number' || typeof p.longitude !== 'number') return;
    const grp = n + 1;
    add(rows.number, 'n', { key: latKey, grp, lo: p.latitude, hi: p.latitude }, String(p.latitude));
    add(rows.number, 'n', { key: lonKey, grp, lo: p.longitude, hi: p.longitude }, String(p.longitude));
  });
}

/** `phonetic`: the Soundex code of each word of each name part, stored as its exact value. */
function addPhonetic(key: number, values: TypedValue[], rows: IndexRows, add: Add): void {
  const parts: StringValue[] = [];
  for (const v of values) stringValues(v, parts);
  for (const code of new Set(parts.flatMap((p) => soundexWords(p.exact)))) add(rows.string, 's', { key, norm: code.toLowerCase(), exact: code }, code);
}

function addIdentifierTypes(key: number, values: TypedValue[], rows: IndexRows, add: Add): void {
  const out: TokenIndexValue[] = [];
  for (const v of values) identifierTypeValues(v, out);
  for (const t of out) add(rows.token, 't', { key, ...t }, `${t.system}\u0000${t.code}`);
}

function addValues(type: SearchParamType, key: number, values: TypedValue[], rows: IndexRows, add: Add): void {
  switch (type) {
    case 'string': {
      const out: StringValue[] = [];
      for (const v of values) stringValues(v, out);
      for (const s of out) add(rows.string, 's', { key, ...s }, s.exact);
      return;
    }
    case 'token': {
      const out: TokenIndexValue[] = [];
      for (const v of values) tokenValues(v, out);
      for (const t of out) add(rows.token, 't', { key, ...t }, `${t.system}\u0000${t.code}\u0000${t.text}`);
      return;
    }
    case 'reference': {
      const out: ReferenceIndexValue[] = [];
      const identifiers: TokenIndexValue[] = [];
      for (const v of values) referenceValues(v, out, identifiers);
      for (const r of out) add(rows.reference, 'r', { key, ...r }, `${r.type}\u0000${r.id}\u0000${r.ref}`);
      for (const t of identifiers) add(rows.token, 't', { key, ...t }, `${t.system}\u0000${t.code}\u0000${t.text}`);
      return;
    }
    case 'date': {
      const out: RangeValue[] = [];
      for (const v of values) dateValues(v, out);
      for (const d of out) add(rows.date, 'd', { key, ...d }, `${d.lo}:${d.hi}`);
      return;
    }
    case 'number': {
      const out: RangeValue[] = [];
      for (const v of values) numberValues(v, out);
      for (const n of out) add(rows.number, 'n', { key, ...n }, `${n.lo}:${n.hi}`);
      return;
    }
    case 'quantity': {
      const out: QuantityIndexValue[] = [];
      for (const v of values) quantityValues(v, out);
      for (const q of out) add(rows.quantity, 'q', { key, ...q }, `${q.lo}:${q.hi}\u0000${q.system}\u0000${q.code}\u0000${q.unit}`);
      return;
    }
    case 'uri': {
      const out: string[] = [];
      for (const v of values) uriValues(v, out);
      for (const uri of out) add(rows.uri, 'u', { key, uri }, uri);
      return;
    }
  }
}
