import type { Resource } from './types.ts';
import { resourceDefinitions } from './definitions.ts';
import { badRequest } from './outcome.ts';

export type SummaryMode = 'true' | 'text' | 'data' | 'false';

const subsetted = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

/** Element paths per type that are in the summary (isSummary), including inside backbone elements. */
let summaryPaths: Map<string, Set<string>> | undefined;

function summaryPathsOf(type: string): Set<string> {
  if (!summaryPaths) summaryPaths = new Map();
  let paths = summaryPaths.get(type);
  if (!paths) {
    paths = new Set();
    for (const el of resourceDefinitions().get(type)?.snapshot?.element ?? []) {
      if (el.isSummary || el.min !== undefined && el.min > 0 && el.path.split('.').length === 2) {
        paths.add(el.path.replace(/\[x\]$/, ''));
      }
    }
    summaryPaths.set(type, paths);
  }
  return paths;
}

export function parseSummary(value: string): SummaryMode | 'count' {
  if (value === 'true' || value === 'text' || value === 'data' || value === 'false' || value === 'count') return value;
  throw badRequest(`_summary must be one of true, text, data, count, false (got "${value}")`);
}

/** _summary (search.html#summary). Subsetted results are tagged SUBSETTED, as the spec requires. */
export function summarize(resource: Resource, mode: SummaryMode): Resource {
  if (mode === 'false') return resource;
  let out: Resource;
  if (mode === 'data') {
    const { text: _t, ...rest } = resource;
    out = rest as Resource;
  } else if (mode === 'text') {
    out = { resourceType: resource.resourceType } as Resource;
    const required = summaryPathsOf(resource.resourceType);
    for (const [k, v] of Object.entries(resource)) {
      if (k === 'id' || k === 'meta' || k === 'text' || required.has(`${resource.resourceType}.${k}`)) out[k] = v;
    }
  } else {
    out = pickSummary(resource, resource.resourceType, summaryPathsOf(resource.resourceType)) as Resource;
    out.resourceType = resource.resourceType;
  }
  return tagSubsetted(out);
}

function pickSummary(node: Record<string, unknown>, path: string, paths: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const name = key.startsWith('_') ? key.slice(1) : key;
    const childPath = `${path}.${choiceBase(name, path, paths)}`;
    if (key === 'id' || key === 'meta' || key === 'resourceType' || !paths.has(childPath)) {
      if (key === 'id' || key === 'meta') out[key] = value;
      continue;
    }
    out[key] = hasChildren(childPath, paths) ? mapBackbone(value, childPath, paths) : value;
  }
  return out;
}

function mapBackbone(value: unknown, path: string, paths: Set<string>): unknown {
  if (Array.isArray(value)) return value.map((v) => mapBackbone(v, path, paths));
  if (value && typeof value === 'object') return pickSummary(value as Record<string, unknown>, path, paths);
  return value;
}

function hasChildren(path: string, paths: Set<string>): boolean {
  for (const p of paths) if (p.startsWith(path + '.')) return true;
  return false;
}

/** `valueQuantity` is summarized as `value[x]`, recorded as `value`. */
function choiceBase(name: string, parent: string, paths: Set<string>): string {
  if (paths.has(`${parent}.${name}`)) return name;
  const m = /^([a-z][A-Za-z]*?)([A-Z][A-Za-z]*)$/.exec(name);
  return m && paths.has(`${parent}.${m[1]}`) ? m[1] : name;
}

/** _elements (search.html#elements): the named top-level elements plus id and meta. */
export function selectElements(resource: Resource, elements: string[]): Resource {
  const keep = new Set(elements.map((e) => e.trim()).filter(Boolean).map((e) => e.replace(new RegExp(`^${resource.resourceType}\\.`), '')));
  const out: Resource = { resourceType: resource.resourceType };
  for (const [k, v] of Object.entries(resource)) {
    const name = k.startsWith('_') ? k.slice(1) : k;
    if (k === 'id' || k === 'meta' || keep.has(name) || [...keep].some((e) => name.startsWith(e) && /^[A-Z]/.test(name.slice(e.length)))) out[k] = v;
  }
  return tagSubsetted(out);
}

function tagSubsetted(resource: Resource): Resource {
  const meta = { ...(resource.meta ?? {}) };
  const tags = meta.tag ?? [];
  if (!tags.some((t) => t.code === subsetted.code && t.system === subsetted.system)) meta.tag = [...tags, subsetted];
  return { ...resource, meta };
}
