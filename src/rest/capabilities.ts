import type { FhirResponse, RestContext } from './context.ts';
import { resourceTypes } from '../fhir/definitions.ts';
import { searchParamsOf } from '../fhir/search/params.ts';
import { capabilitySecurity } from '../auth/smart-configuration.ts';
import type { Config } from '../config/config.ts';
import { accountingOperation } from '../access/audit-trail-access.ts';
import { auditSearchParams } from '../audit/audit-search.ts';
import { verifyOperation } from './verify-signature.ts';

let cached: { key: string; json: string } | undefined;

/**
 * The CapabilityStatement, generated from what this server really does: every R4 type with the
 * same interactions, and the search parameters the search engine indexes for it.
 */
export async function capabilities(ctx: RestContext): Promise<FhirResponse> {
  const key = `${ctx.config.baseUrl} ${ctx.config.auth.mode} ${ctx.config.auth.issuer}`;
  if (cached?.key !== key) cached = { key, json: JSON.stringify(build(ctx.config)) };
  return { status: 200, headers: {}, json: cached.json };
}

const typeInteractions = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'];

/** AuditEvent is the audit trail: searched and read (by admins and auditors), never written through the API. */
function auditTrail(): Record<string, unknown> {
  const supported = new Set(auditSearchParams);
  return {
    type: 'AuditEvent',
    profile: 'http://hl7.org/fhir/StructureDefinition/AuditEvent',
    documentation: 'The append-only, hash-chained audit trail; readable by the admin and auditor roles only',
    interaction: [{ code: 'read' }, { code: 'vread' }, { code: 'search-type' }],
    versioning: 'no-version',
    readHistory: false,
    updateCreate: false,
    searchParam: [...searchParamsOf('AuditEvent').values()]
      .filter((p) => supported.has(p.code))
      .map((p) => ({ name: p.code, definition: p.definition.url, type: p.type })),
  };
}

function build(config: Config): Record<string, unknown> {
  const baseUrl = config.baseUrl;
  const security = capabilitySecurity(config);
  const resource = [...resourceTypes()].sort().map((type) => (type === 'AuditEvent' ? auditTrail() : {
    type,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    interaction: typeInteractions.map((code) => ({ code })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'full-support',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    referencePolicy: ['literal', 'local'],
    searchParam: [...searchParamsOf(type).values()]
      .map((p) => ({ name: p.code, definition: p.definition.url, type: p.type })),
    operation: [
      { name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' },
      ...(type === 'Provenance' ? [
        { name: verifyOperation, definition: `${baseUrl}/OperationDefinition/Provenance-${verifyOperation}`, documentation: "Checks the Provenance's signature (this server's provenance key) against the target versions it names" },
      ] : []),
      ...(type === 'Patient' ? [
        { name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' },
        { name: accountingOperation, definition: `${baseUrl}/OperationDefinition/Patient-${accountingOperation}`, documentation: 'Accounting of disclosures (HIPAA §164.528) of one patient over a period (start, end), as a FHIR document; for the patient and for admins and auditors' },
      ] : []),
    ],
  }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'Bastion', version: '0.1.0' },
    implementation: { description: 'Bastion FHIR R4 server', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }, { code: 'history-system' }],
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
        ...(security ? { security } : {}),
      },
    ],
  };
}
