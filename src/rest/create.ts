import { randomUUID } from 'node:crypto';
import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import { checkResourceBody } from './resource-body.ts';
import { findMatches, lockCriteria } from './conditional.ts';
import { returnPreference, versionHeaders } from './headers.ts';
import { writeResponse } from './respond.ts';
import { preconditionFailed } from '../fhir/outcome.ts';

/** create and conditional create (http.html#create, #ccreate). The server chooses the id. */
export async function create(ctx: RestContext, req: FhirRequest, resourceType: string): Promise<FhirResponse> {
  const resource = checkResourceBody(req.body, resourceType);
  const prefer = returnPreference(req.prefer);
  return ctx.write(async (tx) => {
    if (req.ifNoneExist !== undefined) {
      const criteria = stripTypePrefix(req.ifNoneExist, resourceType);
      await lockCriteria(tx, resourceType, criteria);
      const matches = await findMatches(tx, ctx.config, resourceType, criteria, ctx.terminology);
      if (matches.length > 1) throw preconditionFailed(`If-None-Exist matched ${matches.length > 2 ? 'several' : 2} ${resourceType} resources`);
      if (matches.length === 1) {
        const existing = matches[0];
        const response = writeResponse(ctx.config, 200, existing, prefer, `${resourceType}/${existing.id} already exists; nothing was created`);
        response.headers = { ...versionHeaders(ctx.config.baseUrl, existing) };
        return response;
      }
    }
    const stored = await tx.create({ ...resource, id: req.assignedId ?? randomUUID() });
    return writeResponse(ctx.config, 201, stored, prefer, `Created ${resourceType}/${stored.id}`);
  });
}

/** If-None-Exist may be sent as `identifier=...` or, as some clients do, `Patient?identifier=...`. */
function stripTypePrefix(criteria: string, resourceType: string): string {
  const prefix = `${resourceType}?`;
  return criteria.startsWith(prefix) ? criteria.slice(prefix.length) : criteria.replace(/^\?/, '');
}
