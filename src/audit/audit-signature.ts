import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';

/** A statement about the trail (a checkpoint, a purge) signed with the audit key (ES256 JWS). */
export async function signAuditStatement(payload: object, key: JWK, typ: string): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ })
    .sign(await importJWK(key, 'ES256'));
}

/** The payload of a statement the audit key's public half verifies; undefined otherwise. */
export async function verifiedAuditStatement<T>(jws: string, publicKey: JWK): Promise<T | undefined> {
  try {
    const { payload } = await compactVerify(jws, await importJWK(publicKey, 'ES256'), { algorithms: ['ES256'] });
    return JSON.parse(new TextDecoder().decode(payload)) as T;
  } catch {
    return undefined;
  }
}
