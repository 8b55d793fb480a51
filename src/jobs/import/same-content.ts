import { isDeepStrictEqual } from 'node:util';
import type { Resource } from '../../fhir/types.ts';

/** A resource without the parts the server owns (meta.versionId, meta.lastUpdated); an emptied meta goes too. */
export function withoutServerMeta(resource: Resource): Resource {
  if (!resource.meta || typeof resource.meta !== 'object') return resource;
  const { versionId: _v, lastUpdated: _l, ...meta } = resource.meta;
  const out: Resource = { ...resource };
  if (Object.keys(meta).length === 0) delete out.meta;
  else out.meta = meta;
  return out;
}

/**
 * Whether storing `resource` would change nothing but the version: its content equals the stored
 * JSON once the server-owned meta is set aside (object key order does not matter, array order does).
 */
export function sameContent(storedJson: string, resource: Resource): boolean {
  return isDeepStrictEqual(withoutServerMeta(JSON.parse(storedJson) as Resource), withoutServerMeta(resource));
}
