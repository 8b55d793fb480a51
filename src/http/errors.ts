import type { FastifyError } from 'fastify';
import { FhirError, issue } from '../fhir/outcome.ts';

/**
 * Every error becomes an OperationOutcome with the right status. Fastify's own client errors
 * (body too large, bad media type) are mapped; anything else is a 500 that says nothing about
 * its cause: the log has that, without PHI.
 */
export function toFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  const e = err as FastifyError;
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FhirError(413, 'The request body is larger than this server accepts (BASTION_MAX_BODY_BYTES)', 'too-costly');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FhirError(415, 'Unsupported content type: send application/fhir+json (or application/json-patch+json for patches)', 'not-supported');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new FhirError(400, 'The request body is empty', 'invalid');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new FhirError(400, 'The Content-Length header does not match the body', 'invalid');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new FhirError(e.statusCode, [issue('error', 'invalid', 'The request could not be processed')]);
  }
  return new FhirError(500, [issue('error', 'exception', 'Internal server error')]);
}
