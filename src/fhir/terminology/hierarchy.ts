import type { CodeSystem, Concept } from './types.ts';

/**
 * The is-a hierarchy of a code system, from nested concepts and from `parent` / `child`
 * properties (HL7 code systems use all three). Built once per CodeSystem object.
 */
export interface Hierarchy {
  /** Every code the system defines. */
  readonly codes: ReadonlySet<string>;
  children(code: string): readonly string[];
  parents(code: string): readonly string[];
}

const built = new WeakMap<CodeSystem, Hierarchy>();

export function hierarchyOf(cs: CodeSystem): Hierarchy {
  let h = built.get(cs);
  if (!h) built.set(cs, (h = build(cs)));
  return h;
}

function build(cs: CodeSystem): Hierarchy {
  const codes = new Set<string>();
  const down = new Map<string, Set<string>>();
  const up = new Map<string, Set<string>>();
  const link = (parent: string, child: string): void => {
    if (parent === child) return;
    let d = down.get(parent);
    if (!d) down.set(parent, (d = new Set()));
    d.add(child);
    let u = up.get(child);
    if (!u) up.set(child, (u = new Set()));
    u.add(parent);
  };
  const visit = (concepts: Concept[] | undefined, parent: string | undefined): void => {
    for (const c of concepts ?? []) {
      codes.add(c.code);
      if (parent !== undefined) link(parent, c.code);
      for (const p of c.property ?? []) {
        if (p.valueCode === undefined) continue;
        if (p.code === 'parent') link(p.valueCode, c.code);
        else if (p.code === 'child') link(c.code, p.valueCode);
      }
      visit(c.concept, c.code);
    }
  };
  visit(cs.concept, undefined);
  return {
    codes,
    children: (code) => [...(down.get(code) ?? [])],
    parents: (code) => [...(up.get(code) ?? [])],
  };
}

/** `code` and everything it subsumes (`below`), or everything that subsumes it (`above`). */
export function closure(h: Hierarchy, code: string, direction: 'below' | 'above'): Set<string> {
  const step = direction === 'below' ? h.children : h.parents;
  const seen = new Set<string>([code]);
  const queue = [code];
  while (queue.length > 0) {
    for (const next of step(queue.pop()!)) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen;
}
