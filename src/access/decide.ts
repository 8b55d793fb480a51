import type { Principal } from '../auth/principal.ts';
import type { Interaction } from './interaction.ts';
import { permissionFor, smartScopeRule, type ReadableScope } from './smart-scope-rule.ts';
import { roleRule, rolePermissions } from './role-permissions.ts';
import { relationshipObligation, type RelationshipObligation } from './relationship.ts';
import { breakGlassPatients } from './break-glass.ts';
import { contextRule } from './context.ts';
import { auditTrailRule } from './audit-trail-access.ts';
import { masksFor } from './minimum-necessary.ts';
import { labelsAboveClearance, type LabelCode } from './security-labels.ts';
import { consentObligationFor, type ConsentObligation, type ConsentPolicy } from './consent.ts';

export interface Decision {
  permit: boolean;
  reasons: string[];
  obligations: Obligations;
}

export interface Obligations {
  /** Element masks (minimum necessary) the filter stage applies to what leaves, and writes keep. */
  mask: string[];
  /** Confine the interaction to this Patient's compartment (reads, searches, includes, writes). */
  compartmentPatient?: string;
  /** The resource must match one of these searches (granular scopes); empty: no such limit. */
  anyOfQueries: [string, string][][];
  /** The types (and granular queries) whatever the interaction reaches besides its own resources may be of; undefined: any. */
  readable?: ReadableScope[];
  /** The resource types the principal's role may read (included resources, chain and _has targets); undefined: any. */
  roleReadable?: string[];
  /** A clinician reaches patients' records only through these care relationships. */
  relationship?: RelationshipObligation;
  /** For the audit: e.g. off-hours access that was permitted but flagged. */
  flags?: string[];
  /** Patients whose records break-the-glass opens to this user now: past relationship and labels. */
  breakGlass?: readonly string[];
  /** Security labels (meta.security) a resource must not carry to be seen or written: those above the principal's clearance. */
  hiddenLabels?: LabelCode[];
  /** Serve the de-identified view only (HIPAA Safe Harbor): the researcher role. */
  deIdentify?: boolean;
  /** What patients' Consents withhold from this principal, and which were checked and permit. */
  consent?: ConsentObligation;
}

/**
 * The Policy Decision Point: a pure function of who asks and what for. The local principal exists
 * only on a loopback-only server with authorization switched off (development, tests); every other
 * principal came with a verified token and passes the rules below in turn.
 */
export function decide(principal: Principal, interaction: Interaction, now: number = Date.now(), consents: readonly ConsentPolicy[] = []): Decision {
  if (principal.kind === 'anonymous-local') {
    return { permit: true, reasons: ['local principal on a loopback-only server without authorization'], obligations: none() };
  }
  if (principal.kind === 'anonymous') {
    const permit = interaction.kind === 'capabilities';
    return { permit, reasons: [permit ? 'the CapabilityStatement is public' : 'no token'], obligations: none() };
  }
  if (interaction.resourceType === 'AuditEvent') {
    const trail = auditTrailRule(principal, interaction);
    if (!trail.permit) return { permit: false, reasons: [trail.reason], obligations: none() };
  }
  const scope = smartScopeRule(principal, interaction);
  if (scope.permit) {
    const role = roleRule(principal, interaction.resourceType, permissionFor(interaction.kind));
    if (!role.permit) return { permit: false, reasons: [scope.reason, role.reason], obligations: none() };
  }
  const context = contextRule(principal, now);
  if (scope.permit && !context.permit) return { permit: false, reasons: [scope.reason, ...context.reasons], obligations: none() };
  const obligations: Obligations = { mask: masksFor(principal), anyOfQueries: scope.anyOfQueries };
  if (context.flags.length > 0) obligations.flags = context.flags;
  const reasons = [scope.reason];
  if (principal.kind === 'user') {
    // A search across types may reach only what the role may search; anything else, what it may read.
    const table = rolePermissions();
    const readable = interaction.kind === 'search-system' ? table.searchableTypes(principal.role) : table.readableTypes(principal.role);
    if (readable) obligations.roleReadable = readable;
  }
  if (scope.compartmentPatient) obligations.compartmentPatient = scope.compartmentPatient;
  // Researchers see de-identified data only (access/de-identification.ts), whatever their scopes.
  if (principal.role === 'researcher') obligations.deIdentify = true;
  if (scope.readable) obligations.readable = scope.readable;
  const relationship = relationshipObligation(principal);
  if (relationship) obligations.relationship = relationship;
  const cleared = labelsAboveClearance(principal);
  const hidden = context.hiddenLabels.length > 0 ? [...(cleared ?? []), ...context.hiddenLabels] : cleared;
  if (hidden) obligations.hiddenLabels = hidden;
  if (consents.length > 0) {
    const consent = consentObligationFor(consents, principal, now);
    if (consent.rules.length > 0 || consent.permitting.length > 0) obligations.consent = consent;
  }
  const emergency = breakGlassPatients(principal);
  if (emergency.length > 0 && (relationship || hidden)) {
    obligations.breakGlass = emergency;
    reasons.push(`break-the-glass access to ${emergency.map((p) => `Patient/${p}`).join(', ')}`);
  }
  return { permit: scope.permit, reasons, obligations };
}

/** The obligations of a decision that confines nothing (a local principal, or a denial). */
function none(): Obligations {
  return { mask: [], anyOfQueries: [] };
}

/** The names of the rules that confine what a permitted interaction sees or writes (for the audit record). */
export function rulesInForce(o: Obligations): string[] {
  const rules: string[] = [];
  if (o.compartmentPatient !== undefined) rules.push('patient-compartment');
  if (o.anyOfQueries.length > 0 || o.readable?.some((r) => r.query !== undefined)) rules.push('granular-scopes');
  if (o.roleReadable) rules.push('role-types');
  if (o.relationship) rules.push('relationship');
  if (o.hiddenLabels) rules.push('security-labels');
  if (o.consent && o.consent.rules.length > 0) rules.push('consent');
  if (o.breakGlass) rules.push('break-the-glass');
  if (o.mask.length > 0) rules.push('minimum-necessary');
  if (o.deIdentify) rules.push('de-identified');
  return rules;
}
