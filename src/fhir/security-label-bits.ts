/**
 * The security labels the access rules know (HL7 v3 Confidentiality and the ActCode sensitivity
 * policies of DS4P), each with a bit: a resource's labels among them are kept as one number on its
 * row, so "carries none of these labels" is a test of that number, not a look into the index.
 */
export const confidentialitySystem = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
export const sensitivitySystem = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

export const confidentialityCodes = ['U', 'L', 'M', 'N', 'R', 'V'] as const;
export const sensitivityCodes = ['HIV', 'PSY', 'SUD', 'ETH', 'SEX', 'STD', 'SDV', 'GDIS', 'BH', 'DEMO'] as const;

const bits = new Map<string, number>([
  ...confidentialityCodes.map((code, i): [string, number] => [`${confidentialitySystem}|${code}`, 1 << i]),
  ...sensitivityCodes.map((code, i): [string, number] => [`${sensitivitySystem}|${code}`, 1 << (confidentialityCodes.length + i)]),
]);

/** The bit of a known label; undefined for any other. */
export function labelBit(system: string | null | undefined, code: string | undefined): number | undefined {
  return typeof system === 'string' && code !== undefined ? bits.get(`${system}|${code}`) : undefined;
}

/** The known labels among a resource's meta.security, as bits. */
export function securityMask(resource: { meta?: unknown }): number {
  const security = (resource.meta as { security?: unknown } | undefined)?.security;
  if (!Array.isArray(security)) return 0;
  let mask = 0;
  for (const c of security as { system?: unknown; code?: unknown }[]) {
    const bit = typeof c?.system === 'string' && typeof c.code === 'string' ? bits.get(`${c.system}|${c.code}`) : undefined;
    if (bit) mask |= bit;
  }
  return mask;
}
