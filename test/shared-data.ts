import { fileURLToPath } from 'node:url';

/** ../shared/data beside the repository: real test material nobody here wrote (Synthea, FHIRPath tests). */
export const sharedData = fileURLToPath(new URL('../../shared/data/', import.meta.url));
export const syntheaBundles = `${sharedData}synthea/bundles`;
export const syntheaNdjson = `${sharedData}synthea/bulk-ndjson-10-patients`;
