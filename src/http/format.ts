import { FhirError } from '../fhir/outcome.ts';

export type MediaType = 'application/fhir+json' | 'application/json';

const jsonFormats: Record<string, MediaType> = {
  json: 'application/fhir+json',
  'application/json': 'application/json',
  'application/fhir+json': 'application/fhir+json',
  'application/json+fhir': 'application/fhir+json',
};

/**
 * The media type of the response (http.html#mime-type): `_format` overrides Accept. This server
 * serves JSON only; asking for anything else only (XML, Turtle) is 406.
 */
export function negotiate(format: string | undefined, accept: string | undefined): MediaType {
  if (format !== undefined) {
    const type = jsonFormats[format.split(';')[0].trim().toLowerCase()];
    if (!type) throw notAcceptable(`_format=${format} is not served; this server speaks application/fhir+json`);
    return type;
  }
  if (!accept) return 'application/fhir+json';
  const ranges = accept.split(',').map((r) => r.split(';')[0].trim().toLowerCase());
  for (const range of ranges) {
    if (range === 'application/fhir+json' || range === 'application/json+fhir' || range === '*/*' || range === 'application/*') return 'application/fhir+json';
    if (range === 'application/json') return 'application/json';
  }
  throw notAcceptable(`None of the accepted media types (${accept}) is served; this server speaks application/fhir+json`);
}

function notAcceptable(message: string): FhirError {
  return new FhirError(406, message, 'not-supported');
}
