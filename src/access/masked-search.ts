import type { SearchCriterion, SearchRequest } from '../fhir/search/types.ts';
import { searchParam, splitUnion } from '../fhir/search/params.ts';
import { FhirError } from '../fhir/outcome.ts';

/**
 * Minimum necessary holds for searches too: a masked element must not be learnt by searching or
 * sorting on it (`Patient?address-city=X` answering whether the hidden city is X). A search, chain
 * or _has target, :missing or sort on a parameter whose expression reaches into a masked element
 * is refused, and so is free text (_text, _content) on a type with masks.
 */
export function refuseMaskedSearch(request: SearchRequest, masks: readonly string[]): void {
  if (masks.length === 0) return;
  const masked = maskedTypes(masks);
  const types = request.resourceTypes.length > 0 ? request.resourceTypes : [...masked];
  for (const c of request.criteria) check(c, types, masks, masked);
  for (const s of request.sort) {
    for (const type of types) if (touchesMask(type, s.code, masks)) throw refused(s.code);
  }
}

function check(c: SearchCriterion, types: readonly string[], masks: readonly string[], masked: ReadonlySet<string>): void {
  switch (c.kind) {
    case 'chain':
      for (const type of types) if (touchesMask(type, c.code, masks)) throw refused(c.code);
      check(c.criterion, c.targetTypes, masks, masked);
      return;
    case 'has':
      check(c.criterion, [c.sourceType], masks, masked);
      return;
    case 'for-types':
      check(c.criterion, c.resourceTypes, masks, masked);
      return;
    case 'not':
      check(c.criterion, types, masks, masked);
      return;
    case 'all-of': case 'any-of':
      for (const part of c.criteria) check(part, types, masks, masked);
      return;
    case 'text':
      if (types.some((t) => masked.has(t))) throw refused(c.code);
      return;
    default:
      for (const type of types) if (touchesMask(type, c.code, masks)) throw refused(c.code);
  }
}

function touchesMask(type: string, code: string, masks: readonly string[]): boolean {
  const expression = searchParam(type, code)?.expression;
  if (!expression) return false;
  const paths = splitUnion(expression).map((p) => p.trim().replace(/^\(+/, ''));
  return masks.some((mask) => paths.some((path) => path.startsWith(mask) && !/^[A-Za-z0-9]/.test(path.slice(mask.length))));
}

function maskedTypes(masks: readonly string[]): Set<string> {
  return new Set(masks.map((m) => m.split('.')[0]));
}

function refused(code: string): FhirError {
  return new FhirError(403, `Access denied: this role may not search or sort by ${code}: it reaches elements hidden from it (minimum necessary)`, 'forbidden');
}
