import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Resource } from '../types.ts';
import { splitUnion, type SearchParam } from './params.ts';
import { evaluateNodes, evaluateSteps, normalizeTypeName, parseSimplePath, type Step, type TypedValue } from './path.ts';

export type Evaluator = (resource: Resource) => TypedValue[];

const cache = new Map<string, Evaluator>();

/**
 * The values a parameter's expression selects in resources of `resourceType`, compiled once per
 * type and parameter. Parts in the simple subset run on the fast path; the rest on fhirpath.
 */
export function evaluatorFor(resourceType: string, param: SearchParam): Evaluator {
  const cacheKey = `${resourceType}.${param.code}`;
  let evaluator = cache.get(cacheKey);
  if (!evaluator) {
    evaluator = param.expression === undefined ? () => [] : compileExpression(param.expression, resourceType, param.base);
    cache.set(cacheKey, evaluator);
  }
  return evaluator;
}

export function compileExpression(expression: string, resourceType: string, base: string): Evaluator {
  const roots = [resourceType, 'Resource', 'DomainResource'];
  const fast: Step[][] = [];
  const slow: string[] = [];
  for (const part of splitUnion(expression)) {
    const steps = parseSimplePath(part, roots);
    if (steps) fast.push(steps);
    else slow.push(part);
  }
  // Shared parameters are described by the model under `Resource`, the rest under the type.
  const rootCtx = base === 'Resource' ? 'Resource' : resourceType;
  const engine = slow.length > 0 ? compileWithEngine(slow.join(' | ')) : undefined;
  if (fast.length === 1 && !engine) {
    const [steps] = fast;
    return (resource) => evaluateSteps(steps, resource, rootCtx);
  }
  return (resource) => {
    const out: TypedValue[] = [];
    for (const steps of fast) out.push(...evaluateSteps(steps, resource, rootCtx));
    if (engine) out.push(...engine(resource));
    return out;
  };
}

/**
 * The full engine, for expressions beyond the fast path's subset. `resolve()` would fetch the
 * target; for search only its type matters, so `.where(resolve() is T)` is rewritten into a test
 * of the reference itself (the same rule the fast path applies).
 */
export function compileWithEngine(expression: string): Evaluator {
  const compiled = fhirpath.compile(rewriteResolve(expression), r4, { resolveInternalTypes: false });
  return (resource) => {
    const nodes = compiled(resource) as unknown[];
    const types = fhirpath.types(nodes);
    return nodes.map((node, i) => {
      const value = isNode(node) ? node.data : node;
      return { type: normalizeTypeName(types[i]), value };
    });
  };
}

export function rewriteResolve(expression: string): string {
  return expression.replace(
    /\.where\(resolve\(\)\s+is\s+([A-Za-z]+)\)/g,
    (_all, type: string) =>
      `.where(iif(type.exists(), type = '${type}', reference.matches('(^|/)${type}/[A-Za-z0-9.-]{1,64}(/_history/[A-Za-z0-9.-]{1,64})?$')))`,
  );
}

function isNode(v: unknown): v is { data: unknown } {
  return typeof v === 'object' && v !== null && 'data' in v && 'path' in v;
}

/** A composite parameter's values on a resource: per base node, per part, the part's values. */
export type CompositeEvaluator = (resource: Resource) => TypedValue[][][];

const compositeCache = new Map<string, CompositeEvaluator>();

/**
 * Composite parameters (`Observation | Observation.component`, parts `code` and
 * `value.ofType(Quantity)`): the base expression selects nodes, each part is evaluated relative
 * to each node. Simple paths take the fast path; anything else (`%resource...`) the engine.
 */
export function compositeEvaluatorFor(resourceType: string, param: SearchParam, parts: readonly { expression: string }[]): CompositeEvaluator {
  const cacheKey = `${resourceType}.${param.code}`;
  let evaluator = compositeCache.get(cacheKey);
  if (!evaluator) {
    evaluator = param.expression === undefined ? () => [] : compileComposite(param.expression, resourceType, parts.map((p) => p.expression));
    compositeCache.set(cacheKey, evaluator);
  }
  return evaluator;
}

export function compileComposite(expression: string, resourceType: string, parts: readonly string[]): CompositeEvaluator {
  const roots = [resourceType, 'Resource', 'DomainResource'];
  const base = splitUnion(expression).map((part) => parseSimplePath(part, roots));
  const partSteps = parts.map((part) => splitUnion(part).map((p) => parseSimplePath(p, [])));
  if (base.every((s) => s !== undefined) && partSteps.every((union) => union.every((s) => s !== undefined))) {
    return (resource) => {
      const nodes = base.flatMap((steps) => evaluateNodes(steps!, resource, resourceType));
      return nodes.map((node) => partSteps.map((union) => union.flatMap((steps) => evaluateNodes(steps!, node.value as object, node.ctx ?? ''))));
    };
  }
  return compileCompositeWithEngine(expression, parts);
}

/** The full engine: each base node's path tells the model its type; `%resource` is the whole resource. */
export function compileCompositeWithEngine(expression: string, parts: readonly string[]): CompositeEvaluator {
  const compiled = fhirpath.compile(expression, r4, { resolveInternalTypes: false });
  const partCache = new Map<string, (node: unknown, resource: Resource) => TypedValue[]>();
  const part = (path: string, partExpression: string) => {
    const key = `${path}\u0000${partExpression}`;
    let evaluate = partCache.get(key);
    if (!evaluate) {
      const fn = fhirpath.compile({ base: path, expression: partExpression }, r4, { resolveInternalTypes: false });
      evaluate = (node, resource) => {
        const found = fn(node as Resource, { resource }) as unknown[];
        const types = fhirpath.types(found);
        return found.map((n, i) => ({ type: normalizeTypeName(types[i]), value: isNode(n) ? n.data : n }));
      };
      partCache.set(key, evaluate);
    }
    return evaluate;
  };
  return (resource) =>
    (compiled(resource) as unknown[]).filter(isNode).map((n) => {
      const path = (n as unknown as { path: string }).path;
      return parts.map((p) => part(path, p)(n.data, resource));
    });
}
