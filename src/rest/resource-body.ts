import type { Resource } from '../fhir/types.ts';
import { FhirError, badRequest } from '../fhir/outcome.ts';
import { validateResource } from '../fhir/validation/validate.ts';
import { unenforceableConsent } from '../access/consent.ts';

const idPattern = /^[A-Za-z0-9\-.]{1,64}$/;

export function isValidId(id: string): boolean {
  return idPattern.test(id);
}

/**
 * The body of a create, update or patch result: a JSON object of the URL's type that passes R4
 * validation. Anything else is refused before the store is touched.
 */
export function checkResourceBody(body: unknown, resourceType: string): Resource {
  if (body === undefined || body === null) throw badRequest(`A ${resourceType} resource is required in the request body`);
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object (a FHIR resource)');
  const resource = body as Resource;
  if (typeof resource.resourceType !== 'string') throw badRequest('The resource has no resourceType', ['resourceType']);
  if (resource.resourceType !== resourceType) {
    throw badRequest(`The resource is a ${resource.resourceType}, but the URL is for ${resourceType}`, ['resourceType']);
  }
  const issues = validateResource(resource, { expectedType: resourceType });
  if (issues.length > 0) throw new FhirError(400, issues);
  // A privacy consent the access engine could not enforce must not be taken as if it were.
  const unenforceable = unenforceableConsent(resource as Record<string, unknown>);
  if (unenforceable) throw new FhirError(422, unenforceable, 'business-rule');
  return resource;
}

/** Update: the body's id must be present and equal the URL's (http.html#update). */
export function checkBodyId(resource: Resource, id: string): void {
  if (resource.id === undefined) throw badRequest(`The resource must have an id, and it must be "${id}" as in the URL`, [`${resource.resourceType}.id`]);
  if (resource.id !== id) throw badRequest(`The resource id "${resource.id}" does not match the id in the URL "${id}"`, [`${resource.resourceType}.id`]);
}
