import { isResourceTypeName } from '../fhir/search/params.ts';

/**
 * SMART on FHIR resource scopes (scopes-and-launch-context.html), v1 and v2:
 *   v1  `patient/Observation.read`, `user/*.write`, `system/*.*`
 *   v2  `patient/Observation.rs`, `user/*.cruds`, `patient/Observation.rs?category=laboratory`
 * Each becomes the same structure: which context, which type, which of create / read / update /
 * delete / search it permits, and for granular v2 scopes the search parameters a resource must match.
 */
export type ScopeContext = 'patient' | 'user' | 'system';
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

export interface ResourceScope {
  context: ScopeContext;
  /** A resource type, or '*' for all. */
  resourceType: string;
  permissions: ReadonlySet<Permission>;
  /** Granular v2 scopes: search parameters the resource must also match. */
  query?: [string, string][];
  /** The scope as written. */
  text: string;
}

const v1: Record<string, Permission[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ['c', 'r', 'u', 'd', 's'] };
const order = 'cruds';
const shape = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]{1,63})\.(\*|read|write|[cruds]{1,5})(\?.+)?$/;

/** The resource scope a scope string denotes, or undefined when it is not one (e.g. `openid`, `launch/patient`) or is malformed. */
export function parseResourceScope(text: string): ResourceScope | undefined {
  const m = shape.exec(text);
  if (!m) return undefined;
  const [, context, resourceType, access, queryText] = m;
  if (resourceType !== '*' && !isResourceTypeName(resourceType)) return undefined;
  let permissions: Permission[];
  if (access in v1) {
    if (queryText) return undefined; // granular scopes are a v2 form
    permissions = v1[access];
  } else {
    // v2 letters appear at most once each, in the order c r u d s.
    let at = -1;
    for (const letter of access) {
      const i = order.indexOf(letter);
      if (i <= at) return undefined;
      at = i;
    }
    permissions = [...access] as Permission[];
  }
  let query: [string, string][] | undefined;
  if (queryText) {
    query = [...new URLSearchParams(queryText.slice(1))];
    if (query.length === 0 || query.some(([name, value]) => name === '' || value === '')) return undefined;
  }
  return { context: context as ScopeContext, resourceType, permissions: new Set(permissions), ...(query ? { query } : {}), text };
}

/** Splits a space-separated scope string into resource scopes and the rest (openid, fhirUser, launch, ...). */
export function parseScopes(scope: string): { resource: ResourceScope[]; other: string[] } {
  const resource: ResourceScope[] = [];
  const other: string[] = [];
  for (const s of scope.split(' ')) {
    if (s === '') continue;
    const r = parseResourceScope(s);
    if (r) resource.push(r);
    else other.push(s);
  }
  return { resource, other };
}

/** Whether `granted` permits at least everything `requested` asks (same context, type and permissions, no narrower query). */
export function covers(granted: ResourceScope, requested: ResourceScope): boolean {
  if (granted.context !== requested.context) return false;
  if (granted.resourceType !== '*' && granted.resourceType !== requested.resourceType) return false;
  for (const p of requested.permissions) if (!granted.permissions.has(p)) return false;
  if (!granted.query) return true;
  if (!requested.query) return false;
  // A granular grant covers a request only if the request is at least as narrow.
  return granted.query.every(([n, v]) => requested.query!.some(([rn, rv]) => rn === n && rv === v));
}

/**
 * What may be granted of `requested` given what is `allowed` (the client's registration, the
 * user's role): each requested scope that some allowed scope covers, as it was asked. A scope
 * asking for more than is allowed is not granted at all rather than rewritten: OAuth grants the
 * scope strings the client asked for (oidc-provider matches them exactly), and a client learns
 * what it got from the token response's `scope`. Scopes that are not resource scopes pass only if
 * `allowed` lists them as they are.
 */
export function narrowScopes(requested: string, allowed: string): string[] {
  const want = parseScopes(requested);
  const may = parseScopes(allowed);
  const otherAllowed = new Set(may.other);
  const out = new Set<string>();
  for (const r of want.resource) if (may.resource.some((a) => covers(a, r))) out.add(r.text);
  for (const o of want.other) if (otherAllowed.has(o)) out.add(o);
  return [...out];
}
