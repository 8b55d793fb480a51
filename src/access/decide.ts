import type { Principal } from '../auth/principal.ts';
import type { Interaction } from './interaction.ts';

export interface Decision {
  permit: boolean;
  reasons: string[];
  /** Obligations the filter stage applies to what leaves (masking, label stripping); none yet. */
  obligations: { mask: string[] };
}

/**
 * The Policy Decision Point: a pure function of who asks and what for. Today there is one kind of
 * principal, the local anonymous one on a loopback-only server, and it may do everything; any
 * other principal is denied until the rules that could permit it exist.
 */
export function decide(principal: Principal, interaction: Interaction): Decision {
  if (principal.kind === 'anonymous-local') {
    return { permit: true, reasons: ['local principal on a loopback-only server'], obligations: { mask: [] } };
  }
  return { permit: false, reasons: [`no rule permits ${interaction.kind} for ${principal.kind}`], obligations: { mask: [] } };
}
