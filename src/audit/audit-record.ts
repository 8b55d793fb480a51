import type { Principal } from '../auth/principal.ts';
import type { Interaction, InteractionKind } from '../access/interaction.ts';

/**
 * What the audit trail stores for one interaction: the facts an AuditEvent is made of, and only
 * those, under short keys. The FHIR AuditEvent (audit-event.ts) is rendered from it when records
 * are read or exported. Storing the rendered event (700+ bytes of mostly constant codings) made
 * appending cost more than the read it recorded; this is about a sixth of that.
 */
export interface AuditRecordFacts {
  /** When (FHIR instant). */
  at: string;
  /** The node that recorded it, where several share one trail (AuditEvent.source.site). */
  node?: string;
  /** The interaction kind, or `authn` for an authentication / authorization server event (see `ev`). */
  do: InteractionKind | 'authn';
  /** For `authn`: what happened (login, login-failed, mfa-failed, locked-out, mfa-enrolled, consent, token, ...). */
  ev?: string;
  /** The client application involved (the app a user acts through, or an authorization server event's client). */
  app?: string;
  /** The operation name, for kind 'operation'. */
  op?: string;
  /** The HTTP status the interaction ended with. */
  st: number;
  /** Why it was not applied although it succeeded on its own (a rolled-back transaction entry). */
  why?: string;
  /** The principal's audit identifier (user id or client id). */
  who: string;
  /** The principal's role. */
  rl?: string;
  /** The user's own FHIR resource (fhirUser), e.g. `Practitioner/7`. */
  fu?: string;
  /** The patient in the token's launch context. */
  pc?: string;
  /** Purposes of use the token stated (`system|code`), beyond the role's own. */
  pou?: string[];
  /** Ids of the patients whose data the interaction returned, touched or aimed at (the accounting of disclosures reads these). */
  pt?: string[];
  /** The network address the request came from. */
  ip: string;
  /** References of the resources touched or returned. */
  what?: string[];
  /** The query string, for searches and conditional interactions. */
  q?: string;
  /** What the access decision flagged (e.g. off-hours). */
  fl?: string[];
  /** The access decision: a denial's reasons, or the names of the rules that confined a permitted interaction. */
  rs?: string[];
  /** Consents checked for the decision and their result for this principal: `Consent/7 deny` (withholds some of the record) or `Consent/7 permit`. */
  cs?: string[];
}

export function auditFacts(principal: Principal, interaction: Interaction, status: number, entities: string[], at: string): AuditRecordFacts {
  const facts: AuditRecordFacts = { at, do: interaction.kind, st: status, who: principal.id, ip: principal.address };
  if (principal.role !== 'anonymous') facts.rl = principal.role;
  if (principal.fhirUser) facts.fu = principal.fhirUser;
  if (principal.patient) facts.pc = principal.patient;
  if (principal.clientId && principal.clientId !== principal.id) facts.app = principal.clientId;
  if (principal.purposeOfUse && principal.purposeOfUse.length > 0) facts.pou = principal.purposeOfUse;
  if (interaction.operation) facts.op = interaction.operation;
  if (entities.length > 0) facts.what = entities;
  if (interaction.query) facts.q = interaction.query;
  return facts;
}
