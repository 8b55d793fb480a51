import type { Decision } from './decide.ts';

/**
 * Applies a decision's obligations to a response body before it leaves. With no masks the body
 * passes through untouched (and unparsed, which keeps reads fast).
 */
export function applyObligations<T>(decision: Decision, body: T): T {
  if (decision.obligations.mask.length === 0) return body;
  throw new Error('Masking obligations are not implemented; refusing to release unmasked data');
}
