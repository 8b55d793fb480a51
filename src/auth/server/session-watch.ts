import type { AuthStore } from '../../store/auth-store.ts';

/**
 * A sign-in session ends silently when it expires (left idle, or at its absolute lifetime): no
 * request marks the moment. So that the end is recorded, each saved signed-in session leaves a
 * watch record, keyed by the session's uid (not the cookie value): its user, when they signed in
 * and when the session expires. A sign-out removes it with the session; the server's housekeeping
 * takes those past their expiry and records them.
 */
export const sessionWatchModel = 'SessionWatch';

/** How long a watch outlives its session, so that housekeeping (or a restart) still finds it. */
const keepAfterExpiry = 24 * 3600;

export interface SessionWatch {
  uid: string;
  accountId: string;
  loginTs?: number;
  /** Epoch seconds. */
  expiresAt: number;
}

export async function watchSession(store: AuthStore, session: Record<string, unknown>, expiresIn: number | undefined): Promise<void> {
  const { uid, accountId, loginTs } = session;
  if (typeof uid !== 'string' || typeof accountId !== 'string' || expiresIn === undefined) return;
  const watch: SessionWatch = { uid, accountId, ...(typeof loginTs === 'number' ? { loginTs } : {}), expiresAt: Math.floor(Date.now() / 1000) + expiresIn };
  await store.oauthUpsert(sessionWatchModel, uid, watch as unknown as Record<string, unknown>, expiresIn + keepAfterExpiry);
}

export async function unwatchSession(store: AuthStore, session: Record<string, unknown> | undefined): Promise<void> {
  if (typeof session?.uid === 'string') await store.oauthDestroy(sessionWatchModel, session.uid);
}

/** The sessions expired by now (each returned once: its watch goes). */
export async function takeExpiredSessions(store: AuthStore, now = Math.floor(Date.now() / 1000)): Promise<SessionWatch[]> {
  const expired: SessionWatch[] = [];
  for (const record of await store.oauthList(sessionWatchModel)) {
    const watch = record.payload as unknown as SessionWatch;
    if (typeof watch.uid !== 'string' || typeof watch.expiresAt !== 'number' || watch.expiresAt > now) continue;
    await store.oauthDestroy(sessionWatchModel, watch.uid);
    expired.push(watch);
  }
  return expired;
}
