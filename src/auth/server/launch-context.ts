import type { AuthStore } from '../../store/auth-store.ts';

/**
 * The SMART launch context of one authorization (grant): which patient and encounter the app
 * was launched with, and how to show it. Decided at approval (EHR launch: from the launch the
 * EHR created; standalone: picked by the user, or the patient user themself) and returned with
 * every token of the grant, refreshes included.
 */
export interface LaunchContext {
  patient?: string;
  encounter?: string;
  need_patient_banner?: boolean;
  smart_style_url?: string;
  fhirContext?: { reference: string }[];
}

/** A launch an EHR (or admin) created in advance for an EHR launch: the opaque `launch` value names it. */
export interface EhrLaunch {
  patient?: string;
  encounter?: string;
  /** Who created it: a user (only that user may complete it) or an EHR's backend client (any staff user may). */
  createdBy: string;
  creator: 'user' | 'client';
  /** The app it was created for, when the creator said so: no other app may use it. */
  clientId?: string;
}

/** Why `launch` may not be used by `userId` (of `role`) in `clientId`'s authorization, or undefined when it may. */
export function launchRefusal(launch: EhrLaunch, userId: string, role: string, userPatient: string | undefined, clientId: string): string | undefined {
  if (launch.clientId !== undefined && launch.clientId !== clientId) return 'This launch was created for another app.';
  if (launch.creator === 'user' && launch.createdBy !== userId) return 'This launch was created by another user.';
  if (role === 'patient' && launch.patient !== userPatient) return 'This launch is about another patient.';
  return undefined;
}

export const launchContextModel = 'LaunchContext';
export const ehrLaunchModel = 'EhrLaunch';

export async function saveLaunchContext(store: AuthStore, grantId: string, context: LaunchContext, ttlSeconds: number): Promise<void> {
  await store.oauthUpsert(launchContextModel, grantId, { ...context, grantId }, ttlSeconds);
}

export async function launchContextOf(store: AuthStore, grantId: string | undefined): Promise<LaunchContext | undefined> {
  if (!grantId) return undefined;
  const record = await store.oauthFind(launchContextModel, grantId);
  if (!record) return undefined;
  const { grantId: _, ...context } = record.payload as unknown as LaunchContext & { grantId: string };
  return context;
}
