import type { Resource } from '../fhir/types.ts';
import { parseSummary, selectElements, summarize } from '../fhir/summary.ts';
import { badRequest } from '../fhir/outcome.ts';

export interface Shape {
  summary?: ReturnType<typeof parseSummary>;
  elements?: string[];
}

/** `_summary` and `_elements` from query parameters; both together is an error (search.html#summary). */
export function shapeFrom(params: [string, string][]): Shape {
  const shape: Shape = {};
  for (const [name, value] of params) {
    if (name === '_summary') shape.summary = parseSummary(value);
    else if (name === '_elements') shape.elements = value.split(',').map((e) => e.trim()).filter(Boolean);
  }
  if (shape.summary && shape.elements) throw badRequest('_summary and _elements cannot be used together');
  return shape;
}

export function needsShaping(shape: Shape): boolean {
  return (shape.summary !== undefined && shape.summary !== 'false') || shape.elements !== undefined;
}

/** Applies the shape to stored JSON; unchanged text when there is nothing to do. */
export function shapeJson(json: string, shape: Shape): string {
  if (!needsShaping(shape)) return json;
  const resource = JSON.parse(json) as Resource;
  if (shape.elements) return JSON.stringify(selectElements(resource, shape.elements));
  if (shape.summary && shape.summary !== 'count') return JSON.stringify(summarize(resource, shape.summary));
  return json;
}
