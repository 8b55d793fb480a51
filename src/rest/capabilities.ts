import type { FhirResponse, RestContext } from './context.ts';
import { resourceTypes } from '../fhir/definitions.ts';
import { searchParamsOf } from '../fhir/search/params.ts';
import { capabilitySecurity } from '../auth/smart-configuration.ts';
import type { Config } from '../config/config.ts';

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

function build(config: Config): Record<string, unknown> {
  const baseUrl = config.baseUrl;
  const security = capabilitySecurity(config);
  const resource = [...resourceTypes()].sort().map((type) => ({
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
      ...(type === 'Patient' ? [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }] : []),
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
