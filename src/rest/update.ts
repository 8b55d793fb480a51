import { randomUUID } from 'node:crypto';
import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { Resource } from '../fhir/types.ts';
import type { StoreWriter } from '../store/store.ts';
import { checkBodyId, checkResourceBody } from './resource-body.ts';
import { findMatches, lockCriteria } from './conditional.ts';
import { returnPreference, versionFromEtag } from './headers.ts';
import { writeResponse } from './respond.ts';
import { badRequest, preconditionFailed } from '../fhir/outcome.ts';

/** update, including update-as-create (http.html#update). */
export async function update(ctx: RestContext, req: FhirRequest, resourceType: string, id: string): Promise<FhirResponse> {
  const resource = checkResourceBody(req.body, resourceType);
  checkBodyId(resource, id);
  const ifMatch = req.ifMatch === undefined ? undefined : versionFromEtag(req.ifMatch, 'If-Match');
  return ctx.write((tx) => store(ctx, req, tx, { ...resource, id }, ifMatch));
}

/** Conditional update (http.html#cond-update): no match creates, one match updates, several fail. */
export async function conditionalUpdate(ctx: RestContext, req: FhirRequest, resourceType: string): Promise<FhirResponse> {
  const resource = checkResourceBody(req.body, resourceType);
  const ifMatch = req.ifMatch === undefined ? undefined : versionFromEtag(req.ifMatch, 'If-Match');
  return ctx.write(async (tx) => {
    await lockCriteria(tx, resourceType, req.queryString);
    const matches = await findMatches(tx, ctx.config, resourceType, req.queryString, ctx.terminology);
    if (matches.length > 1) throw preconditionFailed(`The criteria matched several ${resourceType} resources; the update needs exactly one`);
    if (matches.length === 1) {
      const id = matches[0].id;
      if (resource.id !== undefined && resource.id !== id) {
        throw badRequest(`The resource id "${resource.id}" is not that of the resource the criteria matched (${resourceType}/${id})`, [`${resourceType}.id`]);
      }
      return store(ctx, req, tx, { ...resource, id }, ifMatch);
    }
    const serverChose = resource.id === undefined || (req.assignedId !== undefined && resource.id === req.assignedId);
    return store(ctx, req, tx, { ...resource, id: resource.id ?? randomUUID() }, ifMatch, serverChose);
  });
}

async function store(
  ctx: RestContext, req: FhirRequest, tx: StoreWriter, resource: Resource & { id: string }, ifMatch: string | undefined, serverAssignedId = false,
): Promise<FhirResponse> {
  const { stored, created } = await tx.update(resource, { ifMatch, method: 'PUT', serverAssignedId });
  const ref = `${stored.resourceType}/${stored.id}`;
  return writeResponse(ctx.config, created ? 201 : 200, stored, returnPreference(req.prefer), created ? `Created ${ref}` : `Updated ${ref} to version ${stored.versionId}`);
}
