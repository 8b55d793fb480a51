import type { Principal } from '../auth/principal.ts';
import type { Interaction, InteractionKind } from './interaction.ts';
import type { Permission, ResourceScope } from './smart-scopes.ts';

/**
 * SMART scope rule: the token's resource scopes must permit the interaction on its resource type.
 * read / vread / history of one resource need `r`; searches and type history `s`; create `c`;
 * update and patch `u`; delete `d`. A system-wide search or history needs a `*` scope. When only
 * `patient/` scopes permit it, the interaction is confined to the launch patient's compartment;
 * when only granular scopes permit it, to resources matching one of their queries.
 */
export interface ScopeOutcome {
  permit: boolean;
  reason: string;
  /** The patient whose compartment confines the interaction. */
  compartmentPatient?: string;
  /** Granular scopes: the resource must match one of these searches (an empty list: no such limit). */
  anyOfQueries: [string, string][][];
  /**
   * What the token may read besides the interaction's own type (included resources, the targets of
   * chains and _has): the types of its read or search scopes in the same context, with their
   * granular queries. Undefined: any type.
   */
  readable?: ReadableScope[];
}

export interface ReadableScope {
  type: string;
  query?: [string, string][];
}

const needs: Partial<Record<InteractionKind, Permission>> = {
  read: 'r', vread: 'r', 'history-instance': 'r', operation: 'r',
  'search-type': 's', 'search-system': 's', 'history-type': 's', 'history-system': 's',
  create: 'c', update: 'u', patch: 'u', delete: 'd',
};

/** The permission letter an interaction needs, or undefined for those that need none (bundles, capabilities). */
export function permissionFor(kind: InteractionKind): Permission | undefined {
  return needs[kind];
}

/** Interactions that carry no resource data of their own: bundles (each entry is decided on its own) and the CapabilityStatement. */
const containers = new Set<InteractionKind>(['batch', 'transaction', 'capabilities']);

export function smartScopeRule(principal: Principal, interaction: Interaction): ScopeOutcome {
  if (containers.has(interaction.kind)) return { permit: true, reason: `${interaction.kind} needs no scope of its own`, anyOfQueries: [] };
  const permission = needs[interaction.kind];
  const scopes = principal.resourceScopes ?? [];
  const type = interaction.resourceType;
  const matching = scopes.filter((s) => permission !== undefined && s.permissions.has(permission) && (s.resourceType === '*' || s.resourceType === type));
  const applicable = matching.filter((s) => contextFits(principal, s));
  const what = `${interaction.kind} of ${type ?? 'all types'}`;
  if (applicable.length === 0) {
    const hint = matching.length > 0 ? ' (the patient/ scopes have no patient in context)' : '';
    return { permit: false, reason: `no granted scope permits ${what}${hint}`, anyOfQueries: [] };
  }
  // The widest applicable context wins: a user/ or system/ scope is not confined to one patient.
  const unconfined = applicable.filter((s) => s.context !== 'patient');
  const chosen = unconfined.length > 0 ? unconfined : applicable;
  const anyOfQueries = chosen.some((s) => !s.query) ? [] : chosen.map((s) => s.query!);
  const confined = unconfined.length === 0;
  const readScopes = scopes.filter((s) => contextFits(principal, s) && (s.context === 'patient') === confined && (s.permissions.has('r') || s.permissions.has('s')));
  const readable = readScopes.some((s) => s.resourceType === '*' && !s.query)
    ? undefined
    : readScopes.map((s) => (s.query ? { type: s.resourceType, query: s.query } : { type: s.resourceType }));
  return {
    permit: true,
    reason: `scope ${chosen.map((s) => s.text).join(' or ')} permits ${what}`,
    ...(confined ? { compartmentPatient: principal.patient } : {}),
    anyOfQueries,
    ...(readable ? { readable } : {}),
  };
}

/** patient/ scopes need a patient in context; system/ scopes belong to clients acting on their own behalf; user/ scopes to users. */
function contextFits(principal: Principal, s: ResourceScope): boolean {
  switch (s.context) {
    case 'patient': return principal.patient !== undefined;
    case 'system': return principal.kind === 'client';
    case 'user': return principal.kind === 'user';
  }
}
