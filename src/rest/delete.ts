import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import { findMatches } from './conditional.ts';
import { etag, versionFromEtag } from './headers.ts';
import { issue, operationOutcome, preconditionFailed } from '../fhir/outcome.ts';
import type { StoredResource } from '../store/store.ts';

/** delete (http.html#delete): versioned; deleting what is absent or already deleted succeeds. */
export async function remove(ctx: RestContext, req: FhirRequest, resourceType: string, id: string): Promise<FhirResponse> {
  const ifMatch = req.ifMatch === undefined ? undefined : versionFromEtag(req.ifMatch, 'If-Match');
  const deleted = await ctx.write((tx) => tx.delete(resourceType, id, { ifMatch }));
  return deleteResponse(deleted, `${resourceType}/${id}`);
}

/** Conditional delete: this server deletes a single match only; several matches fail with 412. */
export async function conditionalRemove(ctx: RestContext, req: FhirRequest, resourceType: string): Promise<FhirResponse> {
  return ctx.write(async (tx) => {
    const matches = await findMatches(tx, ctx.config, resourceType, req.queryString, ctx.terminology);
    if (matches.length > 1) throw preconditionFailed(`The criteria matched several ${resourceType} resources; conditional delete removes one at most`);
    if (matches.length === 0) return deleteResponse(undefined, `${resourceType}?${req.queryString}`);
    const deleted = await tx.delete(resourceType, matches[0].id);
    return deleteResponse(deleted, `${resourceType}/${matches[0].id}`);
  });
}

function deleteResponse(deleted: StoredResource | undefined, ref: string): FhirResponse {
  if (!deleted) {
    return { status: 200, headers: {}, resource: operationOutcome([issue('information', 'not-found', `${ref}: nothing to delete`)]) };
  }
  return {
    status: 200,
    headers: { etag: etag(deleted.versionId) },
    entities: [`${deleted.resourceType}/${deleted.id}/_history/${deleted.versionId}`],
    resource: operationOutcome([issue('information', 'informational', `Deleted ${ref} (version ${deleted.versionId})`)]),
  };
}
