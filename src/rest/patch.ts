import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { Resource } from '../fhir/types.ts';
import type { StoreWriter } from '../store/store.ts';
import { applyJsonPatch } from '../fhir/patch/json-patch.ts';
import { applyFhirPathPatch } from '../fhir/patch/fhirpath-patch.ts';
import { checkResourceBody } from './resource-body.ts';
import { findMatches } from './conditional.ts';
import { returnPreference, versionFromEtag } from './headers.ts';
import { writeResponse } from './respond.ts';
import { FhirError, badRequest, gone, notFound, preconditionFailed } from '../fhir/outcome.ts';

/** patch (http.html#patch): JSON Patch, or FHIRPath Patch as a Parameters resource. */
export async function patch(ctx: RestContext, req: FhirRequest, resourceType: string, id: string): Promise<FhirResponse> {
  const apply = patchFormat(req);
  const ifMatch = req.ifMatch === undefined ? undefined : versionFromEtag(req.ifMatch, 'If-Match');
  return ctx.write((tx) => patchOne(ctx, req, tx, resourceType, id, apply, ifMatch));
}

export async function conditionalPatch(ctx: RestContext, req: FhirRequest, resourceType: string): Promise<FhirResponse> {
  const apply = patchFormat(req);
  const ifMatch = req.ifMatch === undefined ? undefined : versionFromEtag(req.ifMatch, 'If-Match');
  return ctx.write(async (tx) => {
    const matches = await findMatches(tx, ctx.config, resourceType, req.queryString, ctx.terminology);
    if (matches.length > 1) throw preconditionFailed(`The criteria matched several ${resourceType} resources; the patch needs exactly one`);
    if (matches.length === 0) throw notFound(`No ${resourceType} matches ${req.queryString}`);
    return patchOne(ctx, req, tx, resourceType, matches[0].id, apply, ifMatch);
  });
}

type Apply = (resource: Resource) => Resource;

function patchFormat(req: FhirRequest): Apply {
  const type = (req.contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json-patch+json') return (r) => applyJsonPatch(r, req.body);
  if (type === 'application/fhir+json' || type === 'application/json') return (r) => applyFhirPathPatch(r, req.body);
  throw new FhirError(415, `A patch must be application/json-patch+json or a FHIRPath Patch Parameters resource as application/fhir+json (got ${type || 'no content type'})`, 'not-supported');
}

async function patchOne(
  ctx: RestContext, req: FhirRequest, tx: StoreWriter, resourceType: string, id: string, apply: Apply, ifMatch: string | undefined,
): Promise<FhirResponse> {
  for (let attempt = 1; ; attempt++) {
    const current = await tx.read(resourceType, id);
    if (!current) throw notFound(`${resourceType}/${id} is not known`);
    if (current.deleted) throw gone(`${resourceType}/${id} was deleted`);
    if (ifMatch !== undefined && ifMatch !== current.versionId) {
      throw preconditionFailed(`${resourceType}/${id} is at version ${current.versionId}, not ${ifMatch}`);
    }
    const patched = apply(JSON.parse(current.json!) as Resource);
    if (patched.id !== id) throw badRequest('A patch may not change the resource id');
    const resource = checkPatched(patched, resourceType);
    try {
      const { stored } = await tx.update({ ...resource, id }, { ifMatch: current.versionId, method: 'PATCH' });
      return writeResponse(ctx.config, 200, stored, returnPreference(req.prefer), `Patched ${resourceType}/${id} to version ${stored.versionId}`);
    } catch (err) {
      // Another write landed between the read and the update (PostgreSQL: other connections, other
      // nodes). The client asked for no version: the patch applies to the one now current. The
      // update holds the resource's lock from here, so the next read is the version it replaces.
      if (ifMatch !== undefined || attempt === 3 || !(err instanceof FhirError) || err.status !== 412) throw err;
    }
  }
}

/** A well-formed patch whose result is not a valid resource is unprocessable, not malformed. */
function checkPatched(patched: Resource, resourceType: string): Resource {
  try {
    return checkResourceBody(patched, resourceType);
  } catch (err) {
    if (err instanceof FhirError && err.status === 400) throw new FhirError(422, err.issues);
    throw err;
  }
}
