import type { FhirRequest, FhirResponse, RestContext } from './context.ts';
import type { Resource } from '../fhir/types.ts';
import { FhirError, notFound } from '../fhir/outcome.ts';
import { provenanceDigest, versionDigest } from '../provenance/provenance-signature.ts';
import { auditTrailReaders } from '../access/audit-trail-access.ts';

/** The operation on a Provenance that checks its signature against the versions it names. */
export const verifyOperation = 'verify-signature';

type TargetResult = 'intact' | 'altered' | 'unavailable';

/**
 * Provenance/[id]/$verify-signature: whether the Provenance's signature was made with this
 * server's provenance key over exactly its targets and time, and whether each target version still
 * has the bytes it was signed with. Answers a Parameters resource (valid, message, one `target`
 * part per version); versions the caller may not read are `unavailable`, never described.
 */
export async function verifySignature(ctx: RestContext, _req: FhirRequest, id: string): Promise<FhirResponse> {
  if (!ctx.provenanceSigner) throw new FhirError(501, 'This server signs no Provenance (provenanceSignatures is off), so it verifies none', 'not-supported');
  const stored = await ctx.reader.read('Provenance', id);
  if (!stored?.json) throw notFound(`Provenance/${id} is not known`);
  const provenance = JSON.parse(stored.json) as Resource & Record<string, unknown> & { recorded?: string; target?: { reference?: string }[]; signature?: { sigFormat?: string; data?: string }[] };
  const signature = provenance.signature?.find((s) => s.sigFormat === 'application/jose' && typeof s.data === 'string');
  if (!signature) return answer(false, 'The Provenance carries no signature of this server', [], `Provenance/${id}`);
  const payload = await ctx.provenanceSigner.verify(Buffer.from(signature.data!, 'base64').toString('utf8'));
  if (!payload) return answer(false, "The signature was not made with this server's provenance key, or was altered", [], `Provenance/${id}`);
  const named = (provenance.target ?? []).map((t) => t.reference ?? '').sort();
  const signed = payload.targets.map((t) => t.reference).sort();
  if (payload.recorded !== provenance.recorded || named.join(' ') !== signed.join(' ') || payload.provenance !== provenanceDigest(provenance)) {
    return answer(false, 'The Provenance is not the one that was signed (its author, activity, time or targets changed)', [], `Provenance/${id}`);
  }
  const results: [string, TargetResult][] = [];
  for (const t of payload.targets) results.push([t.reference, await checkTarget(ctx, t.reference, t.sha256)]);
  const valid = results.every(([, r]) => r === 'intact');
  const message = valid ? 'Signed by this server; every target version is as signed' : 'Signed by this server; not every target version could be confirmed as signed';
  return answer(valid, message, results, `Provenance/${id}`);
}

async function checkTarget(ctx: RestContext, reference: string, sha256: string): Promise<TargetResult> {
  const m = /^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\/([A-Za-z0-9\-.]{1,64})$/.exec(reference);
  if (!m) return 'unavailable';
  // Those who read the trail check integrity without reading records (only a hash comparison
  // leaves): anyone else, through what they may read.
  const reader = auditTrailReaders.includes(ctx.principal.role) ? ctx.terminology : ctx.reader;
  const version = await reader.vread(m[1], m[2], m[3]).catch(() => undefined);
  if (!version) return 'unavailable';
  return versionDigest(version) === sha256 ? 'intact' : 'altered';
}

function answer(valid: boolean, message: string, targets: [string, TargetResult][], subject: string): FhirResponse {
  const parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'valid', valueBoolean: valid },
      { name: 'message', valueString: message },
      ...targets.map(([reference, result]) => ({ name: 'target', part: [{ name: 'reference', valueReference: { reference } }, { name: 'result', valueCode: result }] })),
    ],
  };
  return { status: 200, headers: {}, json: JSON.stringify(parameters), entities: [subject] };
}
