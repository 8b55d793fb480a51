import { randomBytes } from 'node:crypto';
import { presentedCertificateThumbprint } from '../client-certificate.ts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DuplicateError, type AuthStore, type Role } from '../../store/auth-store.ts';
import type { StoreReader } from '../../store/store.ts';
import type { Authenticator } from '../authenticate.ts';
import type { Principal } from '../principal.ts';
import { clientRegisteredDetail, userCreatedDetail, type AuthEvent } from '../auth-events.ts';
import { addUser, UserError } from '../users.ts';
import { ClientRegistrationError, registerClient, type ClientType } from '../clients.ts';
import { ehrLaunchModel, type EhrLaunch } from './launch-context.ts';
import { adminScope } from './provider.ts';
import { FhirError } from '../../fhir/outcome.ts';

export interface AdminApiDeps {
  /** This server's issuer: provisioning and launches need its tokens, not an external issuer's. */
  issuer: () => string;
  store: AuthStore;
  fhir: StoreReader;
  authenticator: Authenticator;
  emit: (event: AuthEvent) => void;
}

/** Seconds an EHR launch waits for the app to use it. */
const launchTtl = 600;
const launchRoles: readonly string[] = ['physician', 'nurse', 'lab-technician'];

/**
 * The provisioning API beside the CLI (same rules, same checks): users and clients, for admins;
 * and the EHR launch: an EHR (a clinician's session or a backend client) registers the context
 * it launches an app in and hands the app the opaque `launch` value.
 */
export function registerAdminApi(fastify: FastifyInstance, prefix: string, deps: AdminApiDeps): void {
  /** Who calls; a missing or bad token is refused (401) and recorded. */
  const principalOf = async (request: FastifyRequest, what: string) => {
    try {
      return await deps.authenticator.authenticate({
        authorization: request.headers.authorization, address: request.ip, publicResource: false,
        certificateThumbprint: () => presentedCertificateThumbprint(request.raw.socket),
      });
    } catch (err) {
      deps.emit({ kind: 'authorization-refused', who: 'anonymous', address: request.ip, success: false, detail: `${what}: no valid access token` });
      throw err;
    }
  };

  /** Refusals of the provisioning API and of launches are recorded with who asked and what for. */
  const refused = (p: Principal, request: FastifyRequest, what: string, message: string): FhirError => {
    deps.emit({ kind: 'authorization-refused', who: p.id, address: request.ip, ...(p.clientId ? { client: p.clientId } : {}), success: false, detail: `${what}: ${message}` });
    return new FhirError(403, message, 'forbidden');
  };

  const requireAdmin = async (request: FastifyRequest, what: string): Promise<Principal> => {
    const p = await principalOf(request, what);
    if (p.kind !== 'user' || p.role !== 'admin' || p.issuer !== deps.issuer() || !p.scopes.includes(adminScope)) {
      throw refused(p, request, what, `Provisioning needs an admin's token from this server with the ${adminScope} scope`);
    }
    return p;
  };

  fastify.post(`${prefix}/admin/users`, async (request, reply) => {
    const admin = await requireAdmin(request, 'provisioning users');
    const body = jsonBody(request);
    const generated = typeof body.password !== 'string';
    const password = generated ? randomBytes(15).toString('base64url') : String(body.password);
    try {
      const user = await addUser(deps.store, {
        username: String(body.username ?? ''), role: String(body.role ?? '') as Role, password, mustChangePassword: generated,
        ...(typeof body.fhirUser === 'string' ? { fhirUser: body.fhirUser } : {}),
        ...(typeof body.totpSecret === 'string' ? { totpSecret: body.totpSecret } : {}),
      });
      deps.emit({ kind: 'user-created', who: admin.id, address: request.ip, ...(admin.clientId ? { client: admin.clientId } : {}), success: true, detail: userCreatedDetail(user, generated) });
      return reply.code(201).send({ id: user.id, username: user.username, role: user.role, ...(generated ? { oneTimePassword: password } : {}) });
    } catch (err) {
      return refuse(reply, err);
    }
  });

  fastify.post(`${prefix}/admin/clients`, async (request, reply) => {
    const admin = await requireAdmin(request, 'provisioning clients');
    const body = jsonBody(request);
    try {
      const result = await registerClient(deps.store, {
        name: String(body.name ?? ''), type: String(body.type ?? '') as ClientType, scope: String(body.scope ?? ''),
        redirectUris: Array.isArray(body.redirectUris) ? body.redirectUris.map(String) : [],
        ...(body.jwks ? { jwks: body.jwks as { keys: Record<string, unknown>[] } } : {}),
        ...(typeof body.jwksUri === 'string' ? { jwksUri: body.jwksUri } : {}),
        ...(body.secretMethod === 'client_secret_post' ? { secretMethod: 'client_secret_post' as const } : {}),
        ...(typeof body.tlsSubjectDn === 'string' ? { tlsSubjectDn: body.tlsSubjectDn } : {}),
        ...(typeof body.certificate === 'string' ? { certificate: body.certificate } : {}),
        ...(typeof body.certificateBound === 'boolean' ? { certificateBound: body.certificateBound } : {}),
      });
      deps.emit({ kind: 'client-registered', who: admin.id, address: request.ip, ...(admin.clientId ? { client: admin.clientId } : {}), success: true, detail: clientRegisteredDetail(result.clientId, String(body.type), String(body.scope ?? '')) });
      return reply.code(201).send(result);
    } catch (err) {
      return refuse(reply, err);
    }
  });

  fastify.post(`${prefix}/launch`, async (request, reply) => {
    const who = await principalOf(request, 'launch');
    const staff = who.kind === 'user' && launchRoles.includes(who.role) && who.issuer === deps.issuer() && who.scopes.includes('launch');
    if (!(who.kind === 'client' || staff)) {
      throw refused(who, request, 'launch', 'Launches are created by EHR backend clients, or by clinicians through an EHR app granted the launch scope');
    }
    const body = jsonBody(request);
    const patient = typeof body.patient === 'string' ? body.patient : undefined;
    const encounter = typeof body.encounter === 'string' ? body.encounter : undefined;
    if (patient === undefined && encounter === undefined) throw new FhirError(400, 'A launch needs a patient or an encounter (their ids)');
    for (const [type, id] of [['Patient', patient], ['Encounter', encounter]] as const) {
      if (id === undefined) continue;
      const found = /^[A-Za-z0-9\-.]{1,64}$/.test(id) ? await deps.fhir.read(type, id) : undefined;
      if (!found || found.deleted) throw new FhirError(400, `${type}/${id} is not known`);
    }
    const launch = randomBytes(24).toString('base64url');
    const clientId = typeof body.client_id === 'string' ? body.client_id : undefined;
    const record: EhrLaunch = {
      createdBy: who.id, creator: who.kind === 'client' ? 'client' : 'user',
      ...(patient ? { patient } : {}), ...(encounter ? { encounter } : {}), ...(clientId ? { clientId } : {}),
    };
    await deps.store.oauthUpsert(ehrLaunchModel, launch, record as unknown as Record<string, unknown>, launchTtl);
    // The context, never the launch value (it lets an app take the launch over).
    const context = [...(patient ? [`patient=Patient/${patient}`] : []), ...(encounter ? [`encounter=Encounter/${encounter}`] : []), `for=${clientId ?? 'any app'}`];
    deps.emit({ kind: 'launch-created', who: who.id, address: request.ip, ...(who.clientId ? { client: who.clientId } : {}), success: true, detail: context.join(' ') });
    return reply.code(201).send({ launch, expires_in: launchTtl });
  });
}

function jsonBody(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FhirError(400, 'The body must be a JSON object');
  return body as Record<string, unknown>;
}

function refuse(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof UserError || err instanceof ClientRegistrationError) return reply.code(400).send({ error: 'invalid_request', error_description: err.message });
  if (err instanceof DuplicateError) return reply.code(409).send({ error: 'conflict', error_description: err.message });
  throw err;
}
