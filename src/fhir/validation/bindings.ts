import { ValueSetExpander } from '../terminology/expand.ts';
import { packageTerminology } from '../terminology/package-source.ts';
import type { Expansion } from '../terminology/types.ts';

export type { Expansion };

/**
 * Expansions of the R4 value sets that required bindings point at, computed from the definitions
 * package without a terminology server. Only value sets that expand completely from what the
 * package holds are enforced: a partial expansion would reject valid codes.
 */
let expander: ValueSetExpander | undefined;

/** The expansion of a value set (URL with or without `|version`), or null if it cannot be fully expanded. */
export function expandValueSet(url: string): Expansion | null {
  expander ??= new ValueSetExpander(packageTerminology);
  return expander.expand(url);
}
