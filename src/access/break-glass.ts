import type { Principal } from '../auth/principal.ts';
import { clinicalRoles } from './relationship.ts';

/**
 * Break-the-glass: a clinician without a care relationship with a patient, or without the
 * clearance for some of the record, may open that one patient's record in an emergency by giving
 * purpose of use BTG and a written reason. Access lasts a limited time (60 minutes by default),
 * is recorded as a high-severity audit event and raises an alert. While it lasts, the relationship
 * and label rules let that patient's record through for that user.
 */
export interface BreakGlassRequest {
  patient: string;
  reason: string;
}

/** Why a request for emergency access is refused, or undefined when it may be granted. */
export function breakGlassRefusal(principal: Principal, request: BreakGlassRequest): string | undefined {
  if (principal.kind !== 'user' || !clinicalRoles.includes(principal.role)) return 'Only clinicians may break the glass';
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(request.patient)) return 'Break-the-glass names one patient by id';
  if (request.reason.trim().length < 10) return 'Break-the-glass needs a written reason (10 characters or more)';
  return undefined;
}

/** The patients whose records the principal holds emergency access to, now. */
export function breakGlassPatients(principal: Principal): readonly string[] {
  return principal.breakGlass ?? [];
}
