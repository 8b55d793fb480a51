import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import type { Config } from '../../config/config.ts';
import type { AuthStore, Role, UserRecord } from '../../store/auth-store.ts';
import type { StoreReader } from '../../store/store.ts';
import { parseResourceScope } from '../../access/smart-scopes.ts';
import { roleScopeCeiling } from '../../access/role-scope-ceiling.ts';
import { narrowScopes } from '../../access/smart-scopes.ts';
import { checkPassword, lockoutThreshold, oneAtATime } from '../users.ts';
import { clientScope } from '../clients.ts';
import { hashPassword, passwordProblem } from '../passwords.ts';
import { checkSecondFactor, enrolmentQr, newRecoveryCodes, newTotpSecret, totpStep } from '../totp.ts';
import type { AuthEvent } from '../auth-events.ts';
import { launchScopes, errorPage } from './provider.ts';
import { ehrLaunchModel, launchRefusal, saveLaunchContext, type EhrLaunch, type LaunchContext } from './launch-context.ts';
import * as pages from './pages.ts';

export interface InteractionDeps {
  config: Config;
  store: AuthStore;
  fhir: StoreReader;
  provider: () => Provider;
  cookieSecret: Buffer;
  /** Roles that must pass a second factor (TOTP); others may enrol but need not. */
  mfaRoles: readonly Role[];
  emit: (event: AuthEvent) => void;
}

/** What an interaction has established so far, between its pages (the provider's own record holds only the final results). */
interface Progress {
  userId?: string;
  stage?: 'password' | 'mfa' | 'enrol' | 'recovery';
  pendingSecret?: string;
  recoveryCodes?: string[];
  patient?: string;
}

const progressModel = 'InteractionProgress';
const progressTtl = 600;

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * The pages of an authorization: sign in (password, then TOTP, enrolling it first where the role
 * requires it), choose a patient (standalone launch by staff), approve or deselect the scopes.
 * Server-rendered, no script, CSRF token on every form.
 */
export function registerInteractions(fastify: FastifyInstance, prefix: string, deps: InteractionDeps): void {
  const base = `${prefix}/interaction`;
  const css = `${base}/style.css`;

  fastify.get(css, async (_req, reply) => reply.header('content-type', 'text/css; charset=utf-8').header('cache-control', 'max-age=3600').send(pages.stylesheet));
  fastify.get(`${base}/smart-style.json`, async () => ({ color_background: '#f4f5f7', color_highlight: '#1d4ed8', color_text: '#1d2330', font_family: 'system-ui, sans-serif' }));

  const page = (reply: FastifyReply, details: Details, p: pages.Page, status = 200) =>
    reply.code(status).headers(pages.pageHeaders(formTargets(details))).send(pages.render(p, css));

  /** Runs a handler with the interaction's details; a missing or expired interaction is an error page. */
  const withInteraction = (handler: (request: FastifyRequest, reply: FastifyReply, details: Details, progress: Progress) => Promise<unknown>) =>
    async (request: FastifyRequest<{ Params: { uid: string } }>, reply: FastifyReply) => {
      let details: Details;
      try {
        details = await deps.provider().interactionDetails(request.raw, reply.raw);
      } catch {
        return reply.code(400).headers(pages.pageHeaders([])).send(errorPage('invalid_request', 'This sign-in has expired or was not started here. Go back to the app and start again.'));
      }
      if (details.uid !== request.params.uid) return reply.code(400).headers(pages.pageHeaders([])).send(errorPage('invalid_request', 'This page does not belong to the sign-in in progress.'));
      if (request.method === 'POST' && !csrfOk(deps.cookieSecret, details.uid, formOf(request).get('csrf'))) {
        return reply.code(403).headers(pages.pageHeaders([])).send(errorPage('invalid_request', 'The form has expired or did not come from this server. Go back and try again.'));
      }
      const progress = ((await deps.store.oauthFind(progressModel, details.uid))?.payload ?? {}) as Progress;
      try {
        return await handler(request, reply, details, progress);
      } catch (err) {
        if (!(err instanceof LaunchError) || reply.sent) throw err;
        deps.emit({ kind: 'authorization-refused', who: details.session?.accountId ?? 'unknown', address: request.ip, client: String(details.params.client_id), success: false, detail: err.message });
        return reply.code(403).headers(pages.pageHeaders([])).send(errorPage('access_denied', err.message));
      }
    };

  const save = (uid: string, progress: Progress) => deps.store.oauthUpsert(progressModel, uid, progress as Record<string, unknown>, progressTtl);
  const csrf = (details: Details) => csrfToken(deps.cookieSecret, details.uid);
  const at = (details: Details, step = '') => `${base}/${details.uid}${step}`;
  const clientName = async (details: Details) => {
    const c = await deps.provider().Client.find(String(details.params.client_id));
    return String(c?.clientName ?? details.params.client_id);
  };
  const registeredScope = async (details: Details) => {
    const c = await deps.provider().Client.find(String(details.params.client_id));
    return clientScope((c?.metadata() ?? {}) as { smart_scope?: unknown });
  };
  const finish = async (request: FastifyRequest, reply: FastifyReply, result: Record<string, unknown>) => {
    reply.hijack();
    await deps.provider().interactionFinished(request.raw, reply.raw, result, { mergeWithLastSubmission: false });
  };

  fastify.get(`${base}/:uid`, withInteraction(async (_request, reply, details, progress) => {
    if (details.prompt.name === 'login') {
      if (progress.stage === 'password') return page(reply, details, pages.newPasswordPage(at(details, '/password'), csrf(details)));
      if (progress.stage === 'mfa') return page(reply, details, pages.totpPage(at(details, '/totp'), csrf(details)));
      if (progress.stage === 'enrol' && progress.pendingSecret) {
        const user = await deps.store.userById(progress.userId!);
        const qr = await enrolmentQr(progress.pendingSecret, user?.username ?? '', 'Bastion');
        return page(reply, details, pages.enrolPage(at(details, '/enrol'), csrf(details), qr, progress.pendingSecret));
      }
      if (progress.stage === 'recovery' && progress.recoveryCodes) {
        return page(reply, details, pages.recoveryCodesPage(at(details, '/recovery-done'), csrf(details), progress.recoveryCodes));
      }
      return page(reply, details, pages.loginPage(at(details, '/login'), csrf(details), await clientName(details)));
    }
    const user = await sessionUser(deps.store, details);
    if (!user) return page(reply, details, { title: 'Signed out', body: '<p>Your session has ended. Go back to the app and start again.</p>' }, 400);
    const patient = await patientInContext(deps, details, user, progress);
    if (patient === 'pick') return reply.redirect(at(details, '/patients'), 303);
    return page(reply, details, pages.consentPage(at(details, '/consent'), csrf(details), await clientName(details), scopeChoices(details, user, await registeredScope(details)),
      patient ? await patientLabel(deps.fhir, patient) : undefined));
  }));

  fastify.post(`${base}/:uid/login`, withInteraction(async (request, reply, details) => {
    if (details.prompt.name !== 'login') return reply.redirect(at(details), 303);
    const form = formOf(request);
    const username = (form.get('username') ?? '').trim();
    const result = await checkPassword(deps.store, username, form.get('password') ?? '');
    const client = String(details.params.client_id);
    if (!result.ok) {
      deps.emit({ kind: result.reason === 'locked' ? 'locked-out' : 'login-failed', who: result.user?.id ?? unknownUsername(deps.cookieSecret, username), address: request.ip, client, success: false, detail: result.reason });
      // One message for every failure: it must not tell which usernames exist or are locked.
      return page(reply, details, pages.loginPage(at(details, '/login'), csrf(details), await clientName(details), 'Sign-in failed. Check your username and password, or try again later.'), 401);
    }
    return advance(request, reply, details, result.user);
  }));

  /** After the password: a new password if it was a one-time one, then the second factor (enrolling it first if the role needs one). */
  const advance = async (request: FastifyRequest, reply: FastifyReply, details: Details, user: UserRecord) => {
    const stage: Progress['stage'] = user.mustChangePassword ? 'password'
      : user.totpSecret ? 'mfa'
      : deps.mfaRoles.includes(user.role) ? 'enrol'
      : undefined;
    if (stage) {
      await save(details.uid, { userId: user.id, stage, ...(stage === 'enrol' ? { pendingSecret: newTotpSecret() } : {}) });
      return reply.redirect(at(details), 303);
    }
    deps.emit({ kind: 'login', who: user.id, address: request.ip, client: String(details.params.client_id), success: true, detail: 'password' });
    return finish(request, reply, { login: { accountId: user.id, amr: ['pwd'] } });
  };

  fastify.post(`${base}/:uid/password`, withInteraction(async (request, reply, details, progress) => {
    const user = progress.stage === 'password' && progress.userId ? await deps.store.userById(progress.userId) : undefined;
    if (!user) return reply.redirect(at(details), 303);
    const form = formOf(request);
    const password = form.get('password') ?? '';
    const problem = password !== form.get('confirm') ? 'The two passwords differ.' : passwordProblem(password);
    if (problem) return page(reply, details, pages.newPasswordPage(at(details, '/password'), csrf(details), problem), 400);
    user.passwordHash = await hashPassword(password);
    delete user.mustChangePassword;
    await deps.store.updateUser(user);
    deps.emit({ kind: 'password-changed', who: user.id, address: request.ip, client: String(details.params.client_id), success: true });
    return advance(request, reply, details, user);
  }));

  fastify.post(`${base}/:uid/totp`, withInteraction(async (request, reply, details, progress) => {
    const known = progress.stage === 'mfa' && progress.userId ? await deps.store.userById(progress.userId) : undefined;
    if (!known) return reply.redirect(at(details), 303);
    return oneAtATime(deps.store, known.username, () => secondFactor(request, reply, details, known.id));
  }));

  /** The TOTP step, one attempt per user at a time (see users.ts oneAtATime), on a fresh read of the user. */
  const secondFactor = async (request: FastifyRequest, reply: FastifyReply, details: Details, userId: string) => {
    const user = await deps.store.userById(userId);
    if (!user) return reply.redirect(at(details), 303);
    const client = String(details.params.client_id);
    if (user.lockedUntil !== undefined && user.lockedUntil > Date.now()) {
      deps.emit({ kind: 'locked-out', who: user.id, address: request.ip, client, success: false, detail: 'second factor while locked' });
      return page(reply, details, pages.totpPage(at(details, '/totp'), csrf(details), 'Too many attempts. Try again later.'), 401);
    }
    const factor = await checkSecondFactor(user, formOf(request).get('code') ?? '');
    if (!factor) {
      user.failedLogins += 1;
      if (user.failedLogins >= lockoutThreshold) user.lockedUntil = Date.now() + 60_000 * 2 ** (user.failedLogins - lockoutThreshold);
      await deps.store.updateUser(user);
      deps.emit({ kind: 'mfa-failed', who: user.id, address: request.ip, client, success: false, detail: 'second factor' });
      if (user.lockedUntil !== undefined && user.lockedUntil > Date.now()) {
        deps.emit({ kind: 'locked-out', who: user.id, address: request.ip, client, success: false, detail: `after ${user.failedLogins} failed second factor attempts` });
      }
      return page(reply, details, pages.totpPage(at(details, '/totp'), csrf(details), 'That code is not valid.'), 401);
    }
    user.failedLogins = 0;
    await deps.store.updateUser(user);
    deps.emit({ kind: 'mfa-verified', who: user.id, address: request.ip, client, success: true, detail: factor });
    if (factor === 'recovery') deps.emit({ kind: 'recovery-code-used', who: user.id, address: request.ip, client, success: true });
    deps.emit({ kind: 'login', who: user.id, address: request.ip, client, success: true, detail: `password+${factor}` });
    await deps.store.oauthDestroy(progressModel, details.uid);
    return finish(request, reply, { login: { accountId: user.id, amr: ['pwd', 'otp'] } });
  };

  fastify.post(`${base}/:uid/enrol`, withInteraction(async (request, reply, details, progress) => {
    const user = progress.stage === 'enrol' && progress.userId ? await deps.store.userById(progress.userId) : undefined;
    if (!user || !progress.pendingSecret) return reply.redirect(at(details), 303);
    if (user.totpSecret) {
      // Enrolled meanwhile (in another sign-in): never replaced from here; that factor is asked for instead.
      await save(details.uid, { userId: user.id, stage: 'mfa' });
      return reply.redirect(at(details), 303);
    }
    const step = await totpStep(progress.pendingSecret, (formOf(request).get('code') ?? '').trim());
    if (step === undefined) {
      deps.emit({ kind: 'mfa-failed', who: user.id, address: request.ip, client: String(details.params.client_id), success: false, detail: 'enrolment' });
      const qr = await enrolmentQr(progress.pendingSecret, user.username, 'Bastion');
      return page(reply, details, pages.enrolPage(at(details, '/enrol'), csrf(details), qr, progress.pendingSecret, 'That code is not valid. Check the time on your device and try again.'), 401);
    }
    const recovery = newRecoveryCodes();
    Object.assign(user, { totpSecret: progress.pendingSecret, lastTotpStep: step, recoveryCodes: recovery.hashes });
    await deps.store.updateUser(user);
    deps.emit({ kind: 'mfa-enrolled', who: user.id, address: request.ip, client: String(details.params.client_id), success: true });
    await save(details.uid, { userId: user.id, stage: 'recovery', recoveryCodes: recovery.codes });
    return reply.redirect(at(details), 303);
  }));

  fastify.post(`${base}/:uid/recovery-done`, withInteraction(async (request, reply, details, progress) => {
    if (progress.stage !== 'recovery' || !progress.userId) return reply.redirect(at(details), 303);
    await deps.store.oauthDestroy(progressModel, details.uid);
    deps.emit({ kind: 'login', who: progress.userId, address: request.ip, client: String(details.params.client_id), success: true, detail: 'password+totp (enrolled)' });
    return finish(request, reply, { login: { accountId: progress.userId, amr: ['pwd', 'otp'] } });
  }));

  fastify.get(`${base}/:uid/patients`, withInteraction(async (request, reply, details, progress) => {
    const user = await sessionUser(deps.store, details);
    if (!user || details.prompt.name !== 'consent' || (await patientInContext(deps, details, user, progress)) !== 'pick') return reply.redirect(at(details), 303);
    const q = String((request.query as { q?: string }).q ?? '').slice(0, 100);
    const found = q ? await findPatients(deps.fhir, q) : [];
    if (q) deps.emit({ kind: 'patient-search', who: user.id, address: request.ip, client: String(details.params.client_id), success: true, detail: `${found.length} shown` });
    return page(reply, details, pages.patientPickerPage(at(details, '/patients'), at(details, '/patient'), csrf(details), q, found));
  }));

  fastify.post(`${base}/:uid/patient`, withInteraction(async (request, reply, details, progress) => {
    const user = await sessionUser(deps.store, details);
    if (!user || details.prompt.name !== 'consent') return reply.redirect(at(details), 303);
    if ((await patientInContext(deps, details, user, progress)) !== 'pick') return reply.redirect(at(details), 303);
    const id = formOf(request).get('patient') ?? '';
    const found = /^[A-Za-z0-9\-.]{1,64}$/.test(id) ? await deps.fhir.read('Patient', id) : undefined;
    if (!found || found.deleted) {
      return page(reply, details, pages.patientPickerPage(at(details, '/patients'), at(details, '/patient'), csrf(details), '', [], 'Choose a patient from the list.'), 400);
    }
    await save(details.uid, { ...progress, patient: id });
    return reply.redirect(at(details), 303);
  }));

  fastify.post(`${base}/:uid/consent`, withInteraction(async (request, reply, details, progress) => {
    const user = await sessionUser(deps.store, details);
    if (!user || details.prompt.name !== 'consent') return reply.redirect(at(details), 303);
    const form = formOf(request);
    const client = String(details.params.client_id);
    if (form.get('decision') !== 'allow') {
      deps.emit({ kind: 'consent-denied', who: user.id, address: request.ip, client, success: false });
      return finish(request, reply, { error: 'access_denied', error_description: 'The user did not allow access' });
    }
    const patient = await patientInContext(deps, details, user, progress);
    if (patient === 'pick') return reply.redirect(at(details, '/patients'), 303);
    const offered = new Set(scopeChoices(details, user, await registeredScope(details)).filter((s) => s.grantable).map((s) => s.scope));
    const chosen = new Set(form.getAll('scope').filter((s) => offered.has(s)));
    // Launch and identity scopes are not offered for deselection: they carry no data of their own.
    for (const s of offered) if (launchScopes.includes(s)) chosen.add(s);
    const grantId = await saveGrant(deps.provider(), details, chosen, deps.config.baseUrl);
    const context = await launchContext(deps, details, user, patient);
    await saveLaunchContext(deps.store, grantId, context, deps.config.auth.refreshTokenTtl);
    // An EHR launch is good for one authorization.
    if (details.params.launch) await deps.store.oauthDestroy(ehrLaunchModel, String(details.params.launch));
    await deps.store.oauthDestroy(progressModel, details.uid);
    // The scopes granted and the launch context created with them (references only).
    const contextDetail = [
      `grant=${grantId}`, details.params.launch ? 'ehr-launch' : 'standalone',
      ...(context.patient ? [`patient=Patient/${context.patient}`] : []), ...(context.encounter ? [`encounter=Encounter/${context.encounter}`] : []),
    ];
    deps.emit({ kind: 'consent', who: user.id, address: request.ip, client, success: true, detail: [...chosen, ...contextDetail].join(' ') });
    reply.hijack();
    await deps.provider().interactionFinished(request.raw, reply.raw, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }));

  fastify.post(`${base}/:uid/abort`, withInteraction(async (request, reply, details, progress) => {
    await deps.store.oauthDestroy(progressModel, details.uid);
    deps.emit({ kind: 'consent-denied', who: details.session?.accountId ?? progress.userId ?? 'unknown', address: request.ip, client: String(details.params.client_id), success: false, detail: 'cancelled' });
    return finish(request, reply, { error: 'access_denied', error_description: 'The user cancelled' });
  }));
}

/** The scopes asked for, each marked whether the client's registration and the user's role allow it. */
function scopeChoices(details: Details, user: UserRecord, registered: string): pages.ScopeChoice[] {
  const requested = String(details.params.scope ?? '');
  const allowedByRole = new Set(narrowScopes(requested, roleScopeCeiling(user.role)));
  const allowedByClient = new Set(narrowScopes(requested, registered));
  return requested.split(' ').filter(Boolean).map((scope) => ({
    scope,
    description: describeScope(scope),
    grantable: allowedByRole.has(scope) && allowedByClient.has(scope),
  }));
}

function describeScope(scope: string): string {
  const r = parseResourceScope(scope);
  if (!r) {
    const fixed: Record<string, string> = {
      openid: 'Confirm who you are', fhirUser: 'Know your user record', profile: 'Know your username',
      launch: 'Open in the context of the EHR', 'launch/patient': 'Know which patient is selected', 'launch/encounter': 'Know which encounter is selected',
      offline_access: 'Keep access when you are not using the app', online_access: 'Keep access while you are signed in',
      'bastion/admin': 'Manage users and app registrations on this server',
    };
    return fixed[scope] ?? scope;
  }
  const verbs = [...r.permissions].map((p) => ({ c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' })[p]).join(', ');
  const what = r.resourceType === '*' ? 'all kinds of records' : `${r.resourceType} records`;
  const whose = r.context === 'patient' ? 'of the selected patient' : r.context === 'user' ? 'you can access' : 'of every patient';
  return `${verbs[0].toUpperCase()}${verbs.slice(1)} ${what} ${whose}${r.query ? ' (limited to some of them)' : ''}`;
}

async function sessionUser(store: AuthStore, details: Details): Promise<UserRecord | undefined> {
  const id = details.session?.accountId;
  const user = id ? await store.userById(id) : undefined;
  return user && !user.disabled ? user : undefined;
}

/** The patient of the launch context: from the EHR launch, the patient user themself, or picked; 'pick' when one must still be picked. */
async function patientInContext(deps: InteractionDeps, details: Details, user: UserRecord, progress: Progress): Promise<string | undefined | 'pick'> {
  const launch = await usableLaunch(deps, details, user);
  if (launch) return launch.patient;
  const scopes = String(details.params.scope ?? '').split(' ');
  if (!scopes.includes('launch/patient')) return undefined;
  if (user.role === 'patient') return user.fhirUser?.startsWith('Patient/') ? user.fhirUser.slice('Patient/'.length) : undefined;
  // Only staff who may act in a patient's context pick one; others get no patient (and patient/ scopes then permit nothing).
  if (!pickerRoles.includes(user.role)) return undefined;
  return progress.patient ?? 'pick';
}

async function ehrLaunch(store: AuthStore, launch: string): Promise<EhrLaunch | undefined> {
  return (await store.oauthFind(ehrLaunchModel, launch))?.payload as EhrLaunch | undefined;
}

/** The authorization's EHR launch, if it has one this user may complete in this app; a launch they may not use is an error. */
async function usableLaunch(deps: InteractionDeps, details: Details, user: UserRecord): Promise<EhrLaunch | undefined> {
  if (!details.params.launch) return undefined;
  const launch = await ehrLaunch(deps.store, String(details.params.launch));
  if (!launch) throw new LaunchError('This launch has expired or was already used. Start the app from the EHR again.');
  const ownPatient = user.fhirUser?.startsWith('Patient/') ? user.fhirUser.slice('Patient/'.length) : undefined;
  const refusal = launchRefusal(launch, user.id, user.role, ownPatient, String(details.params.client_id));
  if (refusal) throw new LaunchError(refusal);
  return launch;
}

class LaunchError extends Error {}

/** Roles whose scope ceiling includes patient/ scopes, other than patients themselves. */
const pickerRoles: readonly Role[] = ['nurse', 'physician', 'lab-technician', 'billing'];

async function launchContext(deps: InteractionDeps, details: Details, user: UserRecord, patient: string | undefined): Promise<LaunchContext> {
  const launch = await usableLaunch(deps, details, user);
  return {
    ...(patient ? { patient } : {}),
    ...(launch?.encounter ? { encounter: launch.encounter } : {}),
    // In an EHR launch the EHR shows who the patient is; a standalone app must.
    need_patient_banner: !launch,
    smart_style_url: `${deps.config.auth.issuer}/interaction/smart-style.json`,
  };
}

async function saveGrant(provider: Provider, details: Details, chosen: Set<string>, fhirBase: string): Promise<string> {
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
  if (!grant) throw new Error('The grant of this interaction is gone');
  const requested = String(details.params.scope ?? '').split(' ').filter(Boolean);
  const oidc = requested.filter((s) => launchScopes.includes(s));
  const granted = requested.filter((s) => chosen.has(s));
  const refused = requested.filter((s) => !chosen.has(s));
  if (oidc.some((s) => chosen.has(s))) grant.addOIDCScope(oidc.filter((s) => chosen.has(s)).join(' '));
  if (oidc.some((s) => !chosen.has(s))) grant.rejectOIDCScope(oidc.filter((s) => !chosen.has(s)).join(' '));
  const claims = details.prompt.details.missingOIDCClaims as string[] | undefined;
  if (claims?.length) grant.addOIDCClaims(claims);
  if (granted.length > 0) grant.addResourceScope(fhirBase, granted.join(' '));
  if (refused.length > 0) grant.rejectResourceScope(fhirBase, refused.join(' '));
  return grant.save();
}

async function findPatients(fhir: StoreReader, q: string): Promise<pages.PatientChoice[]> {
  const result = await fhir.search({
    resourceTypes: ['Patient'], criteria: [{ kind: 'string', code: 'name', match: 'prefix', values: [q.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase()] }],
    sort: [], count: 20, offset: 0, total: 'none', include: [], revinclude: [],
  });
  return result.matches.map((m) => ({ id: m.id, label: labelOf(JSON.parse(m.json!) as PatientJson, m.id) }));
}

interface PatientJson { name?: { given?: string[]; family?: string; text?: string }[]; birthDate?: string }

async function patientLabel(fhir: StoreReader, id: string): Promise<string> {
  const r = await fhir.read('Patient', id);
  return r?.json ? labelOf(JSON.parse(r.json) as PatientJson, id) : `Patient/${id}`;
}

function labelOf(p: PatientJson, id: string): string {
  const n = p.name?.[0];
  const name = n?.text ?? [...(n?.given ?? []), n?.family ?? ''].join(' ').trim();
  return `${name || 'Unnamed'}${p.birthDate ? `, born ${p.birthDate}` : ''} (${id})`;
}

/** Where this interaction's forms may lead: back here, and after approval the client's redirect URI. */
function formTargets(details: Details): string[] {
  try {
    return [new URL(String(details.params.redirect_uri)).origin];
  } catch {
    return [];
  }
}

function formOf(request: FastifyRequest): URLSearchParams {
  return new URLSearchParams(typeof request.body === 'string' ? request.body : '');
}

function csrfToken(secret: Buffer, uid: string): string {
  return createHmac('sha256', secret).update(`csrf:${uid}`).digest('base64url');
}

function csrfOk(secret: Buffer, uid: string, token: string | null): boolean {
  if (!token) return false;
  const expected = Buffer.from(csrfToken(secret, uid));
  const given = Buffer.from(token);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/**
 * A sign-in attempt for no known user, as the trail names it: an HMAC (keyed with the server's
 * secret) of what was typed, enough to see repeated attempts with the same name, not the text
 * itself (people type their password into the username field) nor a hash to guess it from.
 */
function unknownUsername(key: Buffer, typed: string): string {
  return `unknown-user:${createHmac('sha256', key).update(`sign-in name\u0000${typed}`).digest('hex').slice(0, 16)}`;
}
