import type {
  ChainCriterion, DateValue, HasCriterion, NumberValue, Prefix, QuantityValue, ReferenceValue, SearchConstraint, SearchCriterion, SearchParamType, SearchRequest, SortKey, TokenValue,
} from '../../fhir/search/types.ts';
import { componentKeys, compositeUnionOf, ofTypeKeys, paramKey, paramKeys, searchParam } from '../../fhir/search/params.ts';
import { normalizeText, prefixEnd } from '../../fhir/search/normalize.ts';
import { frag, join, type Frag } from './sql-frag.ts';
import { labelBit } from '../../fhir/security-label-bits.ts';
import { invalidCursor, keysetCondition, type Cursor } from './search-cursor.ts';
import type { Dialect } from './dialect.ts';

/**
 * Turns a SearchRequest into SQL for the index schema both stores share (SQLite migration 2 and
 * its PostgreSQL twin), in either's dialect. The one place where search becomes SQL: client criteria and the access layer's constraints go through the same builder and
 * end up in the same WHERE clause, so counts and paging always reflect both. Values only ever
 * travel as bound parameters.
 */

export { frag, join, type Frag, type SqlArg } from './sql-frag.ts';

/** The bits of the labels, when every one is a known label given with its system. */
function knownLabelMask(values: readonly TokenValue[]): number | undefined {
  let mask = 0;
  for (const v of values) {
    const bit = labelBit(v.system, v.code);
    if (bit === undefined) return undefined;
    mask |= bit;
  }
  return mask;
}

/** OR of the parts, leaving out those that can never hold (a constraint for types a query does not touch). */
const or = (parts: Frag[]): Frag => {
  const live = parts.filter((p) => p.sql !== never.sql);
  if (live.length === 0) return parts.length === 0 ? wrap(join(parts, ' OR ')) : never;
  return live.length === 1 ? live[0] : wrap(join(live, ' OR '));
};
export const and = (parts: Frag[]): Frag => join(parts, ' AND ');
const wrap = (f: Frag): Frag => ({ sql: `(${f.sql})`, args: f.args });
const placeholders = (n: number): string => Array(n).fill('?').join(', ');
const always = frag('TRUE');
const never = frag('FALSE');

export interface SearchSql {
  page: Frag;
  count: Frag;
}

/**
 * The page query and the count query. The page query reads one row more than the page holds, so
 * the caller knows whether another page follows; with a cursor running backwards ('p') it reads
 * in reverse order, and the caller turns the rows round.
 */
export function buildSearchSql(request: SearchRequest, dialect: Dialect, cursor?: Cursor, probed: ReadonlySet<SearchCriterion> = new Set()): SearchSql {
  if (cursor) checkCursorKeys(cursor, request);
  const where = whereClause(request, dialect, probed);
  const sort = sortKeys(request, dialect);
  const backward = cursor?.d === 'p';
  const order = (prefix: string) => [
    ...sort.map((s, i) => `${prefix}k${i} ${backward ? reversed(s.dir) : s.dir}`),
    `${prefix}rid ${backward ? 'DESC' : 'ASC'}`,
  ].join(', ');
  let matches = join([
    frag('SELECT r.rid AS rid'),
    ...sort.map((s, i) => ({ sql: `, ${s.expr.sql} AS k${i}`, args: s.expr.args })),
    frag(' FROM resources r WHERE '),
    where,
  ], '');
  if (cursor) {
    const keys = sort.map((s, i) => ({ column: `m.k${i}`, descending: s.dir.startsWith('DESC') }));
    matches = join([frag('SELECT * FROM ('), matches, frag(') AS m WHERE '), keysetCondition(keys, 'm.rid', cursor)], '');
  }
  const inner = join([matches, frag(` ORDER BY ${order('')} LIMIT ? OFFSET ?`, request.count + 1, cursor ? 0 : request.offset)], '');
  // Sort and page on the resource table and indexes alone, then read content for the page only.
  const page = join(
    [
      frag(`SELECT r.rid, r.type, r.id, r.version, r.last_updated, ${dialect.content}${sort.map((_, i) => `, page.k${i} AS k${i}`).join('')} FROM (`),
      inner,
      frag(`) AS page JOIN resources r ON r.rid = page.rid JOIN resource_versions v ON v.seq = r.seq ORDER BY ${order('page.')}`),
    ],
    '',
  );
  const count = join([frag('SELECT count(*) AS n FROM resources r WHERE '), where], '');
  return { page, count };
}

function reversed(dir: string): string {
  return dir.startsWith('DESC') ? 'ASC NULLS FIRST' : 'DESC NULLS FIRST';
}

function whereClause(request: SearchRequest, dialect: Dialect, probed: ReadonlySet<SearchCriterion>): Frag {
  const types = request.resourceTypes;
  const parts: Frag[] = [frag('r.deleted = 0')];
  // When a criterion can drive the query from its index rows (rid IN ...), the unary + keeps the
  // planner from scanning every resource of the type instead and probing each one. When every
  // such criterion is too common to list (probed), scanning the type in rid order is the plan.
  const type = request.criteria.some((c) => drivesFromIndex(c) && !probed.has(c)) ? dialect.notDriving('r.type') : 'r.type';
  if (types.length === 1) parts.push(frag(`${type} = ?`, types[0]));
  else if (types.length > 1) parts.push(frag(`${type} IN (${placeholders(types.length)})`, ...types));
  for (const c of request.criteria) parts.push(criterionIn(c, { types, alias: 'r', depth: 0, probe: probed.has(c), dialect }));
  // Checking one resource against the constraints (probeConstraints): each is tested on its row
  // through the rid index, rather than listing every row it admits (a GP's thousands of patients).
  parts.push(...constraintsSql(request.constraints, types, 'r', dialect, request.probeConstraints));
  return and(parts);
}

/** The access layer's constraints on rows of `alias` (one of `types`): for matches and included resources alike. */
export function constraintsSql(constraints: SearchRequest['constraints'], types: readonly string[], alias: string, dialect: Dialect, probe = false): Frag[] {
  return (constraints ?? []).map((constraint) => constraintSql(constraint, types, alias, dialect, probe));
}

const constraintFrags = new WeakMap<SearchConstraint, Map<string, Frag>>();

/** A constraint's SQL, built once per constraint, types and alias: the access layer reuses its constraints (a clinician's spans every type). */
function constraintSql(constraint: SearchConstraint, types: readonly string[], alias: string, dialect: Dialect, probe: boolean): Frag {
  let byShape = constraintFrags.get(constraint);
  if (!byShape) constraintFrags.set(constraint, (byShape = new Map()));
  const key = `${dialect.name}|${alias}|${probe ? 1 : 0}|${types.join(',')}`;
  let f = byShape.get(key);
  if (!f) {
    f = constraint.anyOf.length === 0 ? never : or(constraint.anyOf.map((c) => criterionIn(c, { types, alias, depth: 0, probe, dialect })));
    if (byShape.size >= 64) byShape.delete(byShape.keys().next().value!);
    byShape.set(key, f);
  }
  return f;
}

/** Whether the criterion selects rows of an index table (rather than excluding them, or using the resource table). */
function drivesFromIndex(c: SearchCriterion): boolean {
  if (c.code === '_id' || c.code === '_lastUpdated') return false;
  if (c.kind === 'missing') return !c.missing;
  return c.kind !== 'token' || !c.negate;
}

const tableOf: Partial<Record<SearchParamType, string>> = {
  string: 'search_string',
  token: 'search_token',
  reference: 'search_reference',
  date: 'search_date',
  number: 'search_number',
  quantity: 'search_quantity',
  uri: 'search_uri',
};

/** Index rows a criterion selects: rows of `keys` in `table` satisfying `match`. */
interface Lookup {
  table: string;
  keys: number[];
  match: Frag | undefined;
}

/**
 * `alias.rid [NOT] IN (the rows' rids)`: the index drives. With `scope.probe`, a correlated
 * EXISTS through the (rid, pid) index instead, for a criterion too common to be worth listing
 * (see searchResources: the rows of the resource table then drive, in order, and stop at a page).
 */
function lookupSql(scope: Scope, l: Lookup, negate = false): Frag {
  if (l.keys.length === 0) return negate ? always : never;
  const pid = l.keys.length === 1 ? frag('pid = ?', l.keys[0]) : frag(`pid IN (${placeholders(l.keys.length)})`, ...l.keys);
  const cond = l.match ? and([pid, l.match]) : pid;
  // INDEXED BY: through the resource's own rows; left alone, the planner may walk a value index
  // for a range or an OR once per resource instead.
  // A negation is always tested on the row: listing what it excludes (every V-labelled resource,
  // say) would cost as many steps as there are such rows, on every query.
  if (scope.probe || negate) return join([frag(`${negate ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${l.table}${scope.dialect.byRid(l.table)} WHERE rid = ${scope.alias}.rid AND `), cond, frag(')')], '');
  return join([frag(`${scope.alias}.rid ${negate ? 'NOT IN' : 'IN'} (SELECT rid FROM ${l.table} WHERE `), cond, frag(')')], '');
}

function indexed(scope: Scope, code: string, table: string, match: Frag | undefined, negate = false): Frag {
  return lookupSql(scope, { table, keys: paramKeys(scope.types, code), match }, negate);
}

/**
 * The index rows of a plain positive criterion (no chain, no negation), or undefined: the part of
 * a criterion whose number of matches can be probed cheaply before choosing a plan.
 */
export function lookupOf(c: SearchCriterion, types: readonly string[], dialect: Dialect): Lookup | undefined {
  if (c.code === '_id' || c.code === '_lastUpdated' || (c.kind === 'token' && c.negate)) return undefined;
  const rows = rowMatch(c, dialect);
  return rows && { ...rows, keys: paramKeys(types, c.code) };
}

/** The index table and row condition of a plain criterion's values (composite parts included). */
function rowMatch(c: SearchCriterion, dialect: Dialect): { table: string; match: Frag } | undefined {
  switch (c.kind) {
    case 'string': return { table: 'search_string', match: or(c.values.map((v) => stringMatch(c.match, v, dialect))) };
    case 'token': return { table: 'search_token', match: tokensMatch(c.values) };
    case 'token-text': return { table: 'search_token', match: or(c.values.map((v) => dialect.indexedText(v)).map((v) => frag('text >= ? AND text < ?', v, v + prefixEnd))) };
    case 'reference': return { table: 'search_reference', match: or(c.values.map(referenceMatch)) };
    case 'reference-identifier': return { table: 'search_token', match: or(c.values.map(tokenMatch)) };
    case 'date': return { table: 'search_date', match: or(c.values.map((v) => dateMatch(v, indexColumns))) };
    case 'number': return { table: 'search_number', match: or(c.values.map(numberMatch)) };
    case 'quantity': return { table: 'search_quantity', match: or(c.values.map(quantityMatch)) };
    case 'uri': return { table: 'search_uri', match: or(c.values.map((v) => uriMatch(c.match, v))) };
    default: return undefined;
  }
}

/** `SELECT count(*) AS n` of a lookup's rows, counting no further than `cap`. */
export function cappedCountSql(l: Lookup, cap: number): Frag {
  const pid = frag(`pid IN (${placeholders(l.keys.length)})`, ...l.keys);
  return join([frag(`SELECT count(*) AS n FROM (SELECT 1 FROM ${l.table} WHERE `), l.match ? and([pid, l.match]) : pid, frag(' LIMIT ?)', cap)], '');
}

/** The resources a criterion is about: their possible types, and the SQL alias of their resources row. */
interface Scope {
  types: readonly string[];
  alias: string;
  depth: number;
  /** Test each row of `alias` rather than list the matching rows (top-level criteria only). */
  probe?: boolean;
  dialect: Dialect;
}

/** `types`: the types `alias` may be (empty: any). */
export function criterionSql(c: SearchCriterion, types: readonly string[], dialect: Dialect, alias = 'r'): Frag {
  return criterionIn(c, { types, alias, depth: 0, dialect });
}

function criterionIn(c: SearchCriterion, scope: Scope): Frag {
  const { alias } = scope;
  // "Carries none of these labels" (a clearance): a test of the row's label bits, when all are known ones.
  if (c.kind === 'token' && c.code === '_security' && c.negate) {
    const mask = knownLabelMask(c.values);
    if (mask !== undefined) return frag(`(${alias}.security & ?) = 0`, mask);
  }
  const lookup = lookupOf(c, scope.types, scope.dialect);
  if (lookup) return lookupSql(scope, lookup);
  switch (c.kind) {
    case 'token':
      if (c.code === '_id') {
        const ids = c.values.map((v) => v.code ?? '');
        return frag(`${alias}.id ${c.negate ? 'NOT IN' : 'IN'} (${placeholders(ids.length)})`, ...ids);
      }
      return indexed(scope, c.code, 'search_token', tokensMatch(c.values), c.negate);
    case 'token-of-type': {
      const keys = ofTypeKeys(scope.types, c.code);
      const match = or(c.values.map((v) => v.typeSystem !== undefined
        ? frag('(code = ? AND system = ?)', v.value, `${v.typeSystem}|${v.typeCode}`)
        : wrap(and([frag('code = ?', v.value), scope.dialect.endsWithCode('system', v.typeCode)]))));
      return lookupSql(scope, { table: 'search_token', keys, match });
    }
    case 'date':
      return or(c.values.map((v) => dateMatch(v, lastUpdatedColumns(alias))));
    case 'missing': {
      if (c.code === '_id' || c.code === '_lastUpdated') return c.missing ? never : always;
      const table = tableOf[c.paramType];
      if (!table) return c.missing ? always : never;
      return indexed(scope, c.code, table, undefined, c.missing);
    }
    case 'chain':
      return chainSql(c, scope);
    case 'has':
      return hasSql(c, scope);
    case 'near':
      return or(c.values.map((v) => nearSql(c.code, v, scope)));
    case 'list':
      return listSql(c.values, scope);
    case 'text':
      // _text looks in the narrative only; _content in all of the text.
      return scope.dialect.text(alias, c.code === '_text', c.values);
    case 'composite': {
      const codes = compositeCodes(c.code, scope.types);
      return or(c.values.flatMap((tuple) => codes.map((code) => compositeSql(code, tuple, scope))));
    }
    case 'in-set': {
      const ids = scope.dialect.idSet(c.ids);
      if (c.code === '_id') return join([frag(`${alias}.id IN (`), ids, frag(')')], '');
      const keys = paramKeys(scope.types, c.code);
      if (keys.length === 0) return never;
      // Tested on the row through its own references: a clinician's patients' records are many,
      // the rows a search's other criteria select usually few.
      return join([
        frag(
          `EXISTS (SELECT 1 FROM search_reference${scope.dialect.byRid('search_reference')} WHERE rid = ${alias}.rid AND pid IN (${placeholders(keys.length)})` +
            ' AND target_type = ? AND target_id IN (',
          ...keys, c.targetType ?? '',
        ),
        ids,
        frag('))'),
      ], '');
    }
    case 'not': {
      const inner = criterionIn(c.criterion, { ...scope, probe: false });
      if (inner.sql === never.sql) return always;
      if (inner.sql === always.sql) return never;
      return wrap(join([frag('NOT '), wrap(inner)], ''));
    }
    case 'all-of':
      return c.criteria.length === 0 ? always : wrap(and(c.criteria.map((part) => criterionIn(part, scope))));
    case 'any-of':
      return c.criteria.length === 0 ? never : or(c.criteria.map((part) => criterionIn(part, scope)));
    case 'for-types': {
      const types = scope.types.length === 0 ? c.resourceTypes : c.resourceTypes.filter((t) => scope.types.includes(t));
      if (types.length === 0) return never;
      return wrap(and([frag(`${alias}.type IN (${placeholders(types.length)})`, ...types), criterionIn(c.criterion, { ...scope, types })]));
    }
    default:
      // Plain lookups (string, token, reference, ...) were answered above.
      throw new Error(`no SQL for a ${c.kind} criterion here`);
  }
}

/**
 * The references of `alias` under `code` that lead to a live resource satisfying the rest of the
 * chain. CROSS JOIN fixes the order: find the targets first (usually few), then the references to
 * each through the (pid, target_id, target_type) index, instead of walking every reference.
 */
function chainSql(c: ChainCriterion, scope: Scope): Frag {
  const keys = paramKeys(scope.types, c.code);
  if (keys.length === 0 || c.targetTypes.length === 0) return never;
  const ref = `c${scope.depth}`;
  const target = `t${scope.depth}`;
  const { dialect } = scope;
  const inner = criterionIn(c.criterion, { types: c.targetTypes, alias: target, depth: scope.depth + 1, dialect });
  const typeColumn = drivesFromIndex(c.criterion) ? dialect.notDriving(`${target}.type`) : `${target}.type`;
  return join([
    frag(
      `${scope.alias}.rid IN (SELECT ${ref}.rid FROM resources ${target} ${dialect.fixedJoin} search_reference ${ref}` +
        ` ON ${ref}.pid IN (${placeholders(keys.length)}) AND ${ref}.target_id = ${target}.id AND ${ref}.target_type = ${target}.type` +
        ` WHERE ${target}.deleted = 0 AND ${typeColumn} IN (${placeholders(c.targetTypes.length)}) AND `,
      ...keys, ...c.targetTypes,
    ),
    inner,
    frag(')'),
  ], '');
}

/**
 * The resources that live `sourceType` resources satisfying the inner criterion refer to under
 * `code`. Driven from the source side: find those resources (usually through an index), follow
 * their references, then look the targets up by (type, id).
 */
function hasSql(c: HasCriterion, scope: Scope): Frag {
  const keys = paramKeys([c.sourceType], c.code);
  if (keys.length === 0) return never;
  const source = `h${scope.depth}`;
  const ref = `hr${scope.depth}`;
  const target = `ht${scope.depth}`;
  const { dialect } = scope;
  const inner = criterionIn(c.criterion, { types: [c.sourceType], alias: source, depth: scope.depth + 1, dialect });
  const typeColumn = drivesFromIndex(c.criterion) ? dialect.notDriving(`${source}.type`) : `${source}.type`;
  return join([
    frag(
      `${scope.alias}.rid IN (SELECT ${target}.rid FROM resources ${source}` +
        ` ${dialect.fixedJoin} search_reference ${ref}${dialect.byRid('search_reference')} ON ${ref}.rid = ${source}.rid AND ${ref}.pid IN (${placeholders(keys.length)})` +
        ` ${dialect.fixedJoin} resources ${target} ON ${target}.type = ${ref}.target_type AND ${target}.id = ${ref}.target_id` +
        ` WHERE ${source}.deleted = 0 AND ${typeColumn} = ? AND `,
      ...keys, c.sourceType,
    ),
    inner,
    frag(')'),
  ], '');
}

/**
 * One value of a composite parameter: resources with a base node (a group of index rows) on which
 * every part matches. Each part is looked up through its own (pid, value) index; INTERSECT keeps
 * the (resource, group) pairs all parts share.
 */
function compositeSql(code: string, tuple: SearchCriterion[], scope: Scope): Frag {
  const selects: Frag[] = [];
  for (let i = 0; i < tuple.length; i++) {
    const keys = componentKeys(scope.types, code, i);
    const part = rowMatch(tuple[i], scope.dialect);
    if (keys.length === 0 || !part) return never;
    selects.push(join([frag(`SELECT rid, grp FROM ${part.table} WHERE pid IN (${placeholders(keys.length)}) AND `, ...keys), part.match], ''));
  }
  return join([frag(`${scope.alias}.rid IN (SELECT rid FROM (`), join(selects, ' INTERSECT '), frag(') AS parts)')], '');
}

const earthKm = 6371.0088;
const kmPerDegree = (Math.PI * earthKm) / 180;

/**
 * Locations whose position lies within `km` of the point, by great-circle (haversine) distance.
 * A bounding box on the (pid, lo) index finds the candidates; the distance decides. The box does
 * not wrap across the antimeridian.
 */
function nearSql(code: string, v: { latitude: number; longitude: number; km: number }, scope: Scope): Frag {
  const latKeys = componentKeys(scope.types, code, 0);
  const lonKeys = componentKeys(scope.types, code, 1);
  if (latKeys.length === 0 || lonKeys.length === 0) return never;
  const dLat = v.km / kmPerDegree;
  const cosLat = Math.cos((v.latitude * Math.PI) / 180);
  const dLon = cosLat > 1e-6 ? Math.min(180, v.km / (kmPerDegree * cosLat)) : 180;
  return join([
    frag(
      `${scope.alias}.rid IN (SELECT a.rid FROM search_number a JOIN search_number b ON b.rid = a.rid AND b.grp = a.grp AND b.pid IN (${placeholders(lonKeys.length)})` +
        ` WHERE a.pid IN (${placeholders(latKeys.length)}) AND a.lo BETWEEN ? AND ? AND b.lo BETWEEN ? AND ?` +
        // The bound numbers are cast: PostgreSQL would otherwise take `2 * ?` for an integer.
        ` AND 2 * CAST(? AS DOUBLE PRECISION) * asin(${scope.dialect.least}(1, sqrt(power(sin(radians(a.lo - CAST(? AS DOUBLE PRECISION)) / 2), 2)` +
        ' + cos(radians(CAST(? AS DOUBLE PRECISION))) * cos(radians(a.lo)) * power(sin(radians(b.lo - CAST(? AS DOUBLE PRECISION)) / 2), 2)))) <= ?)',
      ...lonKeys, ...latKeys, v.latitude - dLat, v.latitude + dLat, v.longitude - dLon, v.longitude + dLon,
      earthKm, v.latitude, v.latitude, v.longitude, v.km,
    ),
  ], '');
}

/** `_list`: the live resources the named Lists have as entries (List.entry.item, its `item` parameter). */
function listSql(listIds: string[], scope: Scope): Frag {
  return frag(
    `${scope.alias}.rid IN (SELECT lt.rid FROM resources ll JOIN search_reference lc${scope.dialect.byRid('search_reference')} ON lc.rid = ll.rid AND lc.pid = ?` +
      ` JOIN resources lt ON lt.type = lc.target_type AND lt.id = lc.target_id WHERE ll.type = 'List' AND ll.deleted = 0 AND ll.id IN (${placeholders(listIds.length)}))`,
    paramKey('List', 'item'), ...listIds,
  );
}

/** The composites whose rows answer `code`: itself, or those it is the union of (params.ts compositeUnionOf). */
function compositeCodes(code: string, types: readonly string[]): string[] {
  const codes = new Set<string>();
  for (const type of types) {
    const p = searchParam(type, code);
    if (!p) continue;
    for (const c of compositeUnionOf(type, p) ?? [code]) codes.add(c);
  }
  return [...codes];
}

function stringMatch(match: 'prefix' | 'exact' | 'contains', value: string, dialect: Dialect): Frag {
  switch (match) {
    case 'prefix': {
      const start = dialect.indexedText(value);
      return frag('(norm >= ? AND norm < ?)', start, start + prefixEnd);
    }
    case 'exact': {
      // The norm comparison lets the (pid, norm) index find the candidates: of a value longer
      // than the index keeps, those starting as it does (a row may hold it whole or cut).
      const norm = normalizeText(value);
      const start = dialect.indexedText(norm);
      if (start !== norm) return frag('(norm >= ? AND norm < ? AND exact = ?)', start, start + prefixEnd, value);
      return frag('(norm = ? AND exact = ?)', norm, value);
    }
    case 'contains':
      return dialect.contains('norm', value);
  }
}

/**
 * Values with a system and a code are grouped by system into `code IN (...)`: an expanded value set
 * brings hundreds, and one IN per system lets the (pid, code) index take them in one pass.
 */
function tokensMatch(values: TokenValue[]): Frag {
  if (values.length === 0) return never;
  if (values.length < 4) return or(values.map(tokenMatch));
  const bySystem = new Map<string | null, string[]>();
  const other: Frag[] = [];
  for (const v of values) {
    if (v.code === undefined || v.system === undefined) other.push(tokenMatch(v));
    else {
      let codes = bySystem.get(v.system);
      if (!codes) bySystem.set(v.system, (codes = []));
      codes.push(v.code);
    }
  }
  for (const [system, codes] of bySystem) {
    const inCodes = frag(`code IN (${placeholders(codes.length)})`, ...codes);
    other.push(wrap(and([inCodes, system === null ? frag('system IS NULL') : frag('system = ?', system)])));
  }
  return or(other);
}

function tokenMatch(v: TokenValue): Frag {
  const parts: Frag[] = [];
  if (v.code !== undefined) parts.push(frag('code = ?', v.code));
  if (v.system === null) parts.push(frag('system IS NULL'));
  else if (v.system !== undefined) parts.push(frag('system = ?', v.system));
  return parts.length === 0 ? frag('code IS NOT NULL') : wrap(and(parts));
}

function referenceMatch(v: ReferenceValue): Frag {
  if (v.url !== undefined) return frag('ref = ?', v.url);
  if (v.id === undefined) return never;
  return v.type === undefined ? frag('target_id = ?', v.id) : frag('(target_id = ? AND target_type = ?)', v.id, v.type);
}

function uriMatch(match: 'exact' | 'below' | 'above', value: string): Frag {
  switch (match) {
    case 'exact':
      return frag('uri = ?', value);
    case 'below':
      return frag('(uri >= ? AND uri < ?)', value, value + prefixEnd);
    case 'above':
      return frag('(uri <= ? AND substr(?, 1, length(uri)) = uri)', value, value);
  }
}

/**
 * Comparisons of a target range [lo, hi) with an instant x, so the same prefix rules serve the
 * index table and `_lastUpdated` (an instant stored as text, i.e. the range [t, t + 1 ms)).
 */
interface RangeColumns {
  loGe(x: number): Frag;
  loLt(x: number): Frag;
  hiLe(x: number): Frag;
  hiGt(x: number): Frag;
}

const indexColumns: RangeColumns = {
  loGe: (x) => frag('lo >= ?', x),
  loLt: (x) => frag('lo < ?', x),
  hiLe: (x) => frag('hi <= ?', x),
  hiGt: (x) => frag('hi > ?', x),
};

const minInstant = Date.parse('0000-01-01T00:00:00.000Z');
const maxInstant = Date.parse('9999-12-31T23:59:59.999Z');
const instantText = (x: number): string => new Date(Math.min(Math.max(x, minInstant), maxInstant)).toISOString();

function lastUpdatedColumns(alias: string): RangeColumns {
  const column = `${alias}.last_updated`;
  return {
    loGe: (x) => frag(`${column} >= ?`, instantText(x)),
    loLt: (x) => frag(`${column} < ?`, instantText(x)),
    // t + 1 <= x  <=>  t < x, and t + 1 > x  <=>  t >= x, in whole milliseconds.
    hiLe: (x) => frag(`${column} < ?`, instantText(x)),
    hiGt: (x) => frag(`${column} >= ?`, instantText(x)),
  };
}

/** The prefix table of search.html#prefix, for a search range [s, e) and a target range [lo, hi). */
function dateMatch({ prefix, start: s, end: e }: DateValue, c: RangeColumns): Frag {
  const within = (): Frag => and([c.loGe(s), c.loLt(e), c.hiLe(e)]);
  switch (prefix) {
    case 'eq':
      return wrap(within());
    case 'ne':
      return or([c.loLt(s), c.hiGt(e)]);
    case 'gt':
      return c.hiGt(e);
    case 'lt':
      return c.loLt(s);
    case 'ge':
      return or([c.hiGt(e), wrap(within())]);
    case 'le':
      return or([c.loLt(s), wrap(within())]);
    case 'sa':
      return c.loGe(e);
    case 'eb':
      return c.hiLe(s);
    case 'ap':
      return wrap(and([c.loLt(e), c.hiGt(s)]));
  }
}

/**
 * Numbers: eq / ne / ap use the range the search value's precision implies ([low, high)); the
 * ordering prefixes compare with the value itself (search.html#number: `gt100` is "greater than
 * 100"). Targets are closed ranges [lo, hi]: a point for a plain value, the bounds of a Range.
 */
function numberMatch(v: NumberValue): Frag {
  return numberPrefix(v.prefix, v);
}

function numberPrefix(prefix: Prefix, { value, low, high }: NumberValue): Frag {
  switch (prefix) {
    case 'eq':
      return frag('(lo >= ? AND hi < ?)', low, high);
    case 'ne':
      return frag('(lo < ? OR hi >= ?)', low, high);
    case 'gt':
      return frag('hi > ?', value);
    case 'lt':
      return frag('lo < ?', value);
    case 'ge':
      return frag('hi >= ?', value);
    case 'le':
      return frag('lo <= ?', value);
    case 'sa':
      return frag('lo > ?', value);
    case 'eb':
      return frag('hi < ?', value);
    case 'ap':
      return frag('(lo < ? AND hi >= ?)', high, low);
  }
}

function quantityMatch(v: QuantityValue): Frag {
  const parts = [numberPrefix(v.prefix, v)];
  if (v.system !== undefined) parts.push(frag('system = ?', v.system));
  if (v.code !== undefined) parts.push(v.system !== undefined ? frag('code = ?', v.code) : frag('(code = ? OR unit = ?)', v.code, v.code));
  return wrap(and(parts));
}

interface SortSql {
  expr: Frag;
  dir: string;
}

/**
 * A resource with several values sorts by its lowest when ascending and its highest when
 * descending (search.html#sort); resources without a value come last either way.
 */
function sortKeys(request: SearchRequest, dialect: Dialect): SortSql[] {
  return request.sort.map((key) => ({ expr: sortExpr(key, request.resourceTypes, dialect), dir: key.descending ? 'DESC NULLS LAST' : 'ASC NULLS LAST' }));
}

const sortColumn: Partial<Record<SearchParamType, [string, string, string]>> = {
  string: ['search_string', 'norm', 'norm'],
  token: ['search_token', 'code', 'code'],
  reference: ['search_reference', "coalesce(target_type || '/' || target_id, ref)", "coalesce(target_type || '/' || target_id, ref)"],
  date: ['search_date', 'lo', 'hi'],
  number: ['search_number', 'lo', 'hi'],
  quantity: ['search_quantity', 'lo', 'hi'],
  uri: ['search_uri', 'uri', 'uri'],
};

/**
 * A cursor comes back from the client: each key must be a value its sort key can have (PostgreSQL
 * compares no text with a number, nor a fraction with an integer column, and would fail the search).
 */
function checkCursorKeys(cursor: Cursor, request: SearchRequest): void {
  request.sort.forEach((key, i) => {
    const v = cursor.k[i];
    if (v === null) return;
    const kind = sortKind(key, request.resourceTypes);
    const ok = kind === 'text' ? typeof v === 'string' : kind === 'integer' ? Number.isSafeInteger(v) : kind === 'number' && typeof v === 'number';
    if (!ok) throw invalidCursor();
  });
}

/** What sortExpr's values are. */
function sortKind(key: SortKey, types: readonly string[]): 'text' | 'integer' | 'number' | 'none' {
  if (key.code === '_id') return 'text';
  if (key.code === '_lastUpdated') return 'integer';
  const column = sortColumn[key.type];
  if (!column || paramKeys(types, key.code).length === 0) return 'none';
  return key.type === 'date' ? 'integer' : key.type === 'number' || key.type === 'quantity' ? 'number' : 'text';
}

function sortExpr(key: SortKey, types: readonly string[], dialect: Dialect): Frag {
  if (key.code === '_id') return frag('r.id');
  // seq is the order the versions were written in: time order, with ties in one millisecond broken.
  if (key.code === '_lastUpdated') return frag('r.seq');
  const column = sortColumn[key.type];
  const keys = paramKeys(types, key.code);
  if (!column || keys.length === 0) return frag('NULL');
  const [table, asc, desc] = column;
  const agg = key.descending ? `max(${desc})` : `min(${asc})`;
  // INDEXED BY: look the resource's rows up by (rid, pid); left alone, the planner may walk the
  // whole (pid, value) index for min/max instead.
  return frag(`(SELECT ${agg} FROM ${table}${dialect.byRid(table)} WHERE rid = r.rid AND pid IN (${placeholders(keys.length)}))`, ...keys);
}
