import type { FhirResponse, RestContext } from './context.ts';
import { accountingOperation } from '../access/audit-trail-access.ts';
import { verifyOperation } from './verify-signature.ts';

/**
 * The OperationDefinitions of the operations this server defines itself, so the definitions its
 * CapabilityStatement names can be read (`OperationDefinition/[id]`), without being stored.
 */
const definitions: Record<string, (base: string) => Record<string, unknown>> = {
  [`Patient-${accountingOperation}`]: (base) => ({
    resourceType: 'OperationDefinition',
    id: `Patient-${accountingOperation}`,
    url: `${base}/OperationDefinition/Patient-${accountingOperation}`,
    name: 'AccountingOfDisclosures',
    title: 'Accounting of disclosures (HIPAA §164.528)',
    status: 'active',
    kind: 'operation',
    description: 'Who accessed or received the patient\'s data, when, from where and why, over a period: a FHIR document whose Composition narrative is the accounting, followed by the AuditEvents it lists. For the patient (their own record) and for admins and auditors.',
    code: accountingOperation,
    resource: ['Patient'],
    system: false,
    type: false,
    instance: true,
    affectsState: false,
    parameter: [
      { name: 'start', use: 'in', min: 0, max: '1', type: 'date', documentation: 'From this date or instant (default: six years ago)' },
      { name: 'end', use: 'in', min: 0, max: '1', type: 'date', documentation: 'Up to and including this date or instant (default: now)' },
      { name: 'return', use: 'out', min: 1, max: '1', type: 'Bundle', documentation: 'A document Bundle: the Composition, then the AuditEvents' },
    ],
  }),
  [`Provenance-${verifyOperation}`]: (base) => ({
    resourceType: 'OperationDefinition',
    id: `Provenance-${verifyOperation}`,
    url: `${base}/OperationDefinition/Provenance-${verifyOperation}`,
    name: 'VerifySignature',
    title: 'Verify a Provenance signature',
    status: 'active',
    kind: 'operation',
    description: 'Whether the Provenance\'s signature was made with this server\'s provenance key over the Provenance as it is, and whether each target version still has the bytes it was signed with.',
    code: verifyOperation,
    resource: ['Provenance'],
    system: false,
    type: false,
    instance: true,
    affectsState: false,
    parameter: [
      { name: 'valid', use: 'out', min: 1, max: '1', type: 'boolean' },
      { name: 'message', use: 'out', min: 1, max: '1', type: 'string' },
      { name: 'target', use: 'out', min: 0, max: '*', part: [
        { name: 'reference', use: 'out', min: 1, max: '1', type: 'Reference' },
        { name: 'result', use: 'out', min: 1, max: '1', type: 'code', documentation: 'intact | altered | unavailable' },
      ] },
    ],
  }),
};

export function isOwnOperationDefinition(id: string): boolean {
  return Object.hasOwn(definitions, id);
}

export async function readOwnOperationDefinition(ctx: RestContext, id: string): Promise<FhirResponse> {
  return { status: 200, headers: {}, json: JSON.stringify(definitions[id](ctx.config.baseUrl)) };
}
