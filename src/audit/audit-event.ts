import type { Principal } from '../auth/principal.ts';
import { actionOf, type Interaction } from '../access/interaction.ts';

export interface InteractionOutcome {
  status: number;
  /** References (Type/id) of the resources the interaction touched or returned. */
  entities: string[];
}

/**
 * One FHIR AuditEvent (DICOM/HL7 codes) for one interaction. It names resources by reference and
 * never copies clinical content.
 */
export function buildAuditEvent(principal: Principal, interaction: Interaction, outcome: InteractionOutcome, recorded: string): Record<string, unknown> {
  const entity: Record<string, unknown>[] = outcome.entities.map((reference) => ({
    what: { reference },
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
  }));
  if (interaction.query) {
    entity.push({
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' },
      query: Buffer.from(interaction.query).toString('base64'),
    });
  }
  return {
    resourceType: 'AuditEvent',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: interaction.kind }],
    action: actionOf(interaction.kind),
    recorded,
    outcome: outcomeCode(outcome.status),
    agent: [
      {
        who: { identifier: { value: principal.id } },
        requestor: true,
        network: { address: principal.address, type: '2' },
      },
    ],
    source: { observer: { display: 'Bastion' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4' }] },
    ...(entity.length > 0 ? { entity } : {}),
  };
}

/** 0 success, 4 minor failure (the client's), 8 serious failure (the server's). */
function outcomeCode(status: number): string {
  if (status < 400) return '0';
  if (status < 500) return '4';
  return '8';
}
