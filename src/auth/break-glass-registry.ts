import type { AuthStore } from '../store/auth-store.ts';

const model = 'BreakGlass';

/**
 * Emergency access granted to (user, patient) pairs until they lapse: in memory for the per-request
 * check, in the auth store so a restart keeps them (and their expiry).
 */
export class BreakGlassRegistry {
  /** The auth store model grants are kept as. */
  static readonly model = model;
  private readonly active = new Map<string, Map<string, number>>();
  private readonly store: AuthStore;
  private readonly seconds: number;

  constructor(store: AuthStore, seconds: number) {
    this.store = store;
    this.seconds = seconds;
  }

  async load(): Promise<void> {
    for (const r of await this.store.oauthList(model)) {
      if (r.expiresAt) this.remember(String(r.payload.user), String(r.payload.patient), r.expiresAt * 1000);
    }
  }

  /** Grants (or extends) access; returns when it lapses (epoch ms). */
  async grant(user: string, patient: string, reason: string): Promise<number> {
    const until = Date.now() + this.seconds * 1000;
    this.remember(user, patient, until);
    await this.store.oauthUpsert(model, `${user}|${patient}`, { user, patient, reason }, this.seconds);
    return until;
  }

  /** The patients `user` holds emergency access to now. */
  patientsOf(user: string): string[] | undefined {
    const mine = this.active.get(user);
    if (!mine) return undefined;
    const now = Date.now();
    for (const [patient, until] of mine) if (until <= now) mine.delete(patient);
    if (mine.size === 0) {
      this.active.delete(user);
      return undefined;
    }
    return [...mine.keys()];
  }

  private remember(user: string, patient: string, until: number): void {
    let mine = this.active.get(user);
    if (!mine) this.active.set(user, (mine = new Map()));
    mine.set(patient, until);
  }
}
