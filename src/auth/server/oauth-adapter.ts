import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { AuthStore } from '../../store/auth-store.ts';
import { unwatchSession, watchSession } from './session-watch.ts';

/**
 * oidc-provider's storage, on the auth store. Clients come from the registry of clients
 * (`bastion clients add`), read-only here. Codes and refresh tokens are consumed with a
 * compare-and-set, so two concurrent redemptions of one code cannot both succeed (oidc-provider
 * itself finds, then consumes).
 */
export function adapterFactory(store: AuthStore, onReuse?: (grantId: string) => void): (model: string) => Adapter {
  return (model) => (model === 'Client' ? new ClientAdapter(store) : new StoreAdapter(store, model, onReuse));
}

/**
 * Records whose id is itself the bearer secret (a code, a refresh token): the store keys them by
 * its digest, and the id is not kept inside the record either; it is put back from the id asked for.
 */
const idIsSecret = new Set(['AuthorizationCode', 'RefreshToken', 'AccessToken', 'ClientCredentials', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest']);

class StoreAdapter implements Adapter {
  private readonly store: AuthStore;
  private readonly model: string;
  private readonly onReuse?: (grantId: string) => void;

  constructor(store: AuthStore, model: string, onReuse?: (grantId: string) => void) {
    this.store = store;
    this.model = model;
    this.onReuse = onReuse;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    let stored = payload as Record<string, unknown>;
    if (idIsSecret.has(this.model) && stored.jti === id) {
      const { jti: _, ...rest } = stored;
      stored = rest;
    }
    await this.store.oauthUpsert(this.model, id, stored, expiresIn);
    // A signed-in session is watched, so that its expiry can be recorded (session-watch.ts).
    if (this.model === 'Session') await watchSession(this.store, stored, expiresIn);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const payload = payloadOf(await this.store.oauthFind(this.model, id));
    return payload && idIsSecret.has(this.model) ? { ...payload, jti: id } : payload;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return payloadOf(await this.store.oauthFindBy(this.model, 'uid', uid));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return payloadOf(await this.store.oauthFindBy(this.model, 'user_code', userCode));
  }

  /**
   * A code or refresh token redeemed twice at once: the loser finds it already consumed. That is
   * reuse as much as a later attempt is, so the whole grant goes, as oidc-provider does for reuse.
   */
  async consume(id: string): Promise<void> {
    if (await this.store.oauthConsume(this.model, id)) return;
    const grantId = (await this.store.oauthFind(this.model, id))?.payload.grantId;
    if (typeof grantId === 'string') {
      await this.store.oauthRevokeByGrantId(grantId);
      await this.store.oauthDestroy('Grant', grantId);
      this.onReuse?.(grantId);
    }
    throw new errors.InvalidGrant(`${this.model} already used`);
  }

  async destroy(id: string): Promise<void> {
    const session = this.model === 'Session' ? (await this.store.oauthFind(this.model, id))?.payload : undefined;
    await this.store.oauthDestroy(this.model, id);
    // Ended (signed out, or re-keyed): not to be recorded as expired later.
    if (session) await unwatchSession(this.store, session);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.store.oauthRevokeByGrantId(grantId);
  }
}

function payloadOf(record: { payload: Record<string, unknown>; consumed?: number } | undefined): AdapterPayload | undefined {
  if (!record) return undefined;
  return (record.consumed !== undefined ? { ...record.payload, consumed: record.consumed } : record.payload) as AdapterPayload;
}

class ClientAdapter implements Adapter {
  private readonly store: AuthStore;

  constructor(store: AuthStore) {
    this.store = store;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const client = await this.store.client(id);
    return client ? (client.metadata as AdapterPayload) : undefined;
  }

  async upsert(): Promise<void> {
    throw new Error('Clients are registered through bastion clients add');
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}

  async destroy(): Promise<void> {}

  async revokeByGrantId(): Promise<void> {}
}
