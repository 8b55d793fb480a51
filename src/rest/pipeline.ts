import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Interaction } from '../access/interaction.ts';
import { decide } from '../access/decide.ts';
import { applyObligations } from '../access/filter.ts';
import { buildAuditEvent } from '../audit/audit-event.ts';
import { FhirError } from '../fhir/outcome.ts';
import { route } from './router.ts';

/**
 * The spine every FHIR request passes, in order: (authenticated principal in ctx) -> decide ->
 * execute -> filter -> audit. A batch or transaction entry passes it again on its own.
 */
export async function handle(ctx: RestContext, audit: AuditLog, req: FhirRequest): Promise<FhirResponse> {
  let interaction: Interaction = { kind: 'operation', query: req.queryString || undefined };
  try {
    const r = route(req);
    interaction = r.interaction;
    const decision = decide(ctx.principal, interaction);
    if (!decision.permit) throw new FhirError(403, `Access denied: ${decision.reasons.join('; ')}`, 'forbidden');
    const response = await r.execute(ctx, req);
    if (response.resource) response.resource = applyObligations(decision, response.resource);
    if (response.json) response.json = applyObligations(decision, response.json);
    record(ctx, audit, interaction, response.status, response.entities ?? []);
    return response;
  } catch (err) {
    record(ctx, audit, interaction, err instanceof FhirError ? err.status : 500, targetOf(interaction));
    throw err;
  }
}

function record(ctx: RestContext, audit: AuditLog, interaction: Interaction, status: number, entities: string[]): void {
  audit.record(buildAuditEvent(ctx.principal, interaction, { status, entities }, new Date().toISOString()));
}

function targetOf(interaction: Interaction): string[] {
  if (!interaction.resourceType || !interaction.id) return [];
  return [`${interaction.resourceType}/${interaction.id}`];
}
