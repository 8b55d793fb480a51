import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { Resource } from '../fhir/types.ts';
import { validateResource } from '../fhir/validation/validate.ts';
import { badRequest, issue, operationOutcome } from '../fhir/outcome.ts';

/**
 * $validate (resource-operation-validate): the body is the resource, or a Parameters with a
 * `resource` part. Always answers with an OperationOutcome; an invalid resource is not an error
 * of the operation itself, so the status is 200 either way.
 */
export async function validateOperation(_ctx: RestContext, req: FhirRequest, resourceType: string, id?: string): Promise<FhirResponse> {
  const resource = resourceOf(req.body);
  const issues = validateResource(resource, { expectedType: resourceType });
  if (id !== undefined && (resource as Resource).id !== undefined && (resource as Resource).id !== id) {
    issues.push(issue('error', 'invalid', `The resource id does not match the id in the URL "${id}"`, [`${resourceType}.id`]));
  }
  const outcome = issues.length > 0 ? issues : [issue('information', 'informational', 'Validation successful: no issues found')];
  return { status: 200, headers: {}, resource: operationOutcome(outcome) };
}

function resourceOf(body: unknown): unknown {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('$validate needs a resource, or a Parameters resource with a "resource" parameter, in the body');
  }
  const b = body as { resourceType?: unknown; parameter?: { name?: string; resource?: unknown }[] };
  if (b.resourceType !== 'Parameters') return body;
  const part = Array.isArray(b.parameter) ? b.parameter.find((p) => p?.name === 'resource') : undefined;
  if (!part?.resource) throw badRequest('The Parameters for $validate has no "resource" parameter');
  return part.resource;
}
