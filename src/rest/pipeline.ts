import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { Config } from '../config/config.ts';
import type { Principal } from '../auth/principal.ts';
import type { Store, StoreWriter } from '../store/store.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Interaction } from '../access/interaction.ts';
import { decide, rulesInForce, type Decision } from '../access/decide.ts';
import type { ConsentObligation } from '../access/consent.ts';
import { applyObligations } from '../access/filter.ts';
import { auditFacts } from '../audit/audit-record.ts';
import { patientsConcerned } from '../audit/record-patients.ts';
import { FhirError } from '../fhir/outcome.ts';
import { route } from './router.ts';
import { Confinement } from './confinement.ts';
import { onDeIdentifiedView } from './de-identified-view.ts';
import type { Pseudonyms } from '../access/pseudonyms.ts';
import { consentsIn, type AccessFacts } from './access-facts.ts';
import { withProvenance } from '../provenance/provenance-record.ts';
import type { ProvenanceSigner } from '../provenance/provenance-signature.ts';

/** What a request's context draws on besides the store: facts cached across requests, keys. */
export interface RequestServices {
  facts?: AccessFacts;
  pseudonyms?: Pseudonyms;
  provenanceSigner?: ProvenanceSigner;
}

/**
 * The context of one request from outside (HTTP, CLI import): its own transactions on the store,
 * each recording the Provenance of what it wrote in the same transaction.
 */
export function requestContext(config: Config, store: Store, audit: AuditLog, principal: Principal, services: RequestServices = {}): RestContext {
  const written = { provenance: [] as string[], patients: [] as string[] };
  const write = <T>(work: (tx: StoreWriter) => Promise<T>): Promise<T> => store.transaction(async (tx) => {
    const { result, provenance, patients } = await withProvenance(tx, principal, services.provenanceSigner, work);
    written.provenance.push(...provenance);
    written.patients.push(...patients);
    return result;
  });
  return {
    config, principal, audit, trail: store, reader: store, terminology: store, write, inTransaction: false, dispatch: handle, written, ...services,
  };
}

/**
 * The spine every FHIR request passes, in order: (authenticated principal in ctx) -> decide ->
 * execute -> filter -> audit. A batch or transaction entry passes it again on its own.
 */
export async function handle(ctx: RestContext, req: FhirRequest): Promise<FhirResponse> {
  const audit = ctx.audit;
  let interaction: Interaction = { kind: 'operation', query: req.queryString || undefined };
  let decision: Decision | undefined;
  try {
    const r = route(req);
    interaction = r.interaction;
    const loaded = consentsIn(ctx.facts);
    const consents = loaded instanceof Promise ? await loaded : loaded;
    decision = decide(ctx.principal, interaction, Date.now(), consents);
    // Losing audit records is worse than refusing requests: none is served while the trail cannot be written.
    if (audit.unwritable && ctx.config.auditFailClosed && interaction.kind !== 'capabilities') {
      throw new FhirError(503, 'The audit trail cannot be written at the moment, so no request is served (fail closed); try again shortly', 'transient', { 'retry-after': '5' });
    }
    if (!decision.permit) throw new FhirError(403, `Access denied: ${decision.reasons.join('; ')}`, 'forbidden');
    const confinement = Confinement.of(decision.obligations, interaction.resourceType);
    const inner = confinement ? confined(ctx, confinement) : ctx;
    const response = decision.obligations.deIdentify
      ? await onDeIdentifiedView(inner, req, interaction, (c, q) => route(q).execute(c, q))
      : await r.execute(inner, req);
    if (response.resource) response.resource = applyObligations(decision, response.resource);
    if (response.json) response.json = applyObligations(decision, response.json);
    record(ctx, audit, interaction, response.status, response.entities ?? [], decision, disclosed(req, response));
    return response;
  } catch (err) {
    record(ctx, audit, interaction, err instanceof FhirError ? err.status : 500, targetOf(interaction), decision);
    throw err;
  }
}

/** The context of one interaction held to a confinement: its reads and writes see only what the decision allows. */
function confined(ctx: RestContext, confinement: Confinement): RestContext {
  return { ...ctx, reader: confinement.reader(ctx.reader, ctx.facts), write: (work) => ctx.write((tx) => work(confinement.writer(tx))) };
}

/**
 * The audit record of one interaction, with the decision behind it: a denial's reasons, or the
 * rules that confined what was seen (why a read answered 404), the flags and the consents checked.
 */
function record(ctx: RestContext, audit: AuditLog, interaction: Interaction, status: number, entities: string[], decision: Decision | undefined, body?: string): void {
  // The Provenance its writes recorded: the AuditEvent names it (a failed write recorded none).
  const { provenance, patients } = ctx.written;
  const facts = auditFacts(ctx.principal, interaction, status, provenance.length > 0 ? [...entities, ...provenance.splice(0)] : entities, new Date().toISOString());
  const changed = patients.length > 0 ? patients.splice(0) : undefined;
  // De-identified data is not PHI (and its ids are pseudonyms), and the trail holds references,
  // not records: neither discloses a patient's data.
  if (!decision?.obligations.deIdentify && interaction.resourceType !== 'AuditEvent') {
    const concerned = patientsConcerned(interaction, entities, body, changed);
    if (concerned.length > 0) facts.pt = concerned;
  }
  if (decision) {
    const flags = decision.obligations.flags;
    if (flags && flags.length > 0) facts.fl = flags;
    const consents = consentChecks(decision.obligations.consent);
    if (consents && consents.length > 0) facts.cs = consents;
    const reasons = decision.permit ? rulesInForce(decision.obligations) : decision.reasons;
    if (reasons.length > 0) facts.rs = reasons;
  }
  if (ctx.pendingAudit) ctx.pendingAudit.push(facts);
  else audit.record(facts);
}

/** The consents checked, with their result for this principal (at most 50: a search may meet many). */
function consentChecks(consent: ConsentObligation | undefined): string[] | undefined {
  if (!consent) return undefined;
  return [...consent.rules.map((r) => `${r.ref} deny`), ...consent.permitting.map((ref) => `${ref} permit`)].slice(0, 50);
}

/** The content the interaction disclosed or wrote, scanned for the patients it concerns. */
function disclosed(req: FhirRequest, response: FhirResponse): string | undefined {
  if (response.json) return response.json;
  if (response.status >= 400) return undefined;
  return req.body && typeof req.body === 'object' ? JSON.stringify(req.body) : undefined;
}

function targetOf(interaction: Interaction): string[] {
  if (!interaction.resourceType || !interaction.id) return [];
  return [`${interaction.resourceType}/${interaction.id}`];
}
