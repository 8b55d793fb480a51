import type { TlsOptions } from 'node:tls';
import type { Socket } from 'node:net';
import { compile as compileTrust } from '@fastify/proxy-addr';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config/config.ts';
import type { Store } from '../store/store.ts';
import type { FhirRequest, FhirResponse } from '../rest/context.ts';
import { localAuthenticator, type Authenticator } from '../auth/authenticate.ts';
import { AuditLog } from '../audit/audit-log.ts';
import { openAuditSinks } from '../audit/sinks/open-sinks.ts';
import type { AuditRecordFacts } from '../audit/audit-record.ts';
import { authEventFacts } from '../auth/auth-events.ts';
import type { ProvenanceSigner } from '../provenance/provenance-signature.ts';
import { handle, requestContext } from '../rest/pipeline.ts';
import { AccessFacts } from '../rest/access-facts.ts';
import { Pseudonyms } from '../access/pseudonyms.ts';
import { FhirError, badRequest } from '../fhir/outcome.ts';
import { negotiate, type MediaType } from './format.ts';
import { toFhirError } from './errors.ts';
import { addCorsHeaders, registerPreflight } from './cors.ts';
import { presentedCertificateThumbprint } from '../auth/client-certificate.ts';
import { rateCountersFor } from '../access/rate-limits.ts';
import { RequestRates } from '../monitor/request-rates.ts';
import type { Alerts } from '../monitor/alerts.ts';
import { rateLimitedFacts, raiseRateAlert, requestWeight, setRateHeaders, rateRefusal } from './rate-limit.ts';

export interface AppOptions {
  config: Config;
  store: Store;
  /** Who is asking, from each request's credentials (default: the local principal, auth=off). */
  authenticator?: Authenticator;
  /** The secret the de-identified view's pseudonyms are keyed with (32+ bytes); without it researchers are refused. */
  pseudonymKey?: Buffer;
  /** Signs the Provenance of writes; without it Provenance is recorded unsigned. */
  provenanceSigner?: ProvenanceSigner;
  /** pino options, or false for no logging (tests). */
  logger?: boolean | Record<string, unknown>;
  /** The HTTPS listener's TLS options (config transport `on`); without them the server speaks plain HTTP. */
  https?: TlsOptions;
  /** Request counts for the rate limits (shared with the other nodes on PostgreSQL); default: this node's own. Closed with the app. */
  rates?: RequestRates;
  /** Where a rate limit's first refusal of a window is raised. */
  alerts?: Alerts;
}

export interface App {
  fastify: FastifyInstance;
  audit: AuditLog;
}

/** The HTTP face of the pipeline: turns requests into FhirRequests and FhirResponses into replies. */
export function buildApp(options: AppOptions): App {
  const { config, store, authenticator = localAuthenticator, logger = false, pseudonymKey, provenanceSigner, https, alerts } = options;
  const fastify = Fastify({
    logger,
    ...(https ? { https } : {}),
    // Behind a TLS-terminating proxy only the proxy's own addresses may name the client's (X-Forwarded-For).
    ...(config.transport.mode === 'proxy' ? { trustProxy: config.transport.trustProxy } : {}),
    bodyLimit: config.maxBodyBytes,
    // Request URLs carry search values (names, identifiers): PHI stays out of the log.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    return503OnClosing: true,
    // Errors Fastify raises before routing (a malformed URL) must also be OperationOutcomes.
    frameworkErrors: (err, request, reply) => {
      const fhirError = err.code === 'FST_ERR_BAD_URL' ? badRequest('The request URL is not validly percent-encoded') : toFhirError(err);
      void send(reply, { status: fhirError.status, headers: {}, resource: fhirError.outcome() }, 'application/fhir+json', false, request.method === 'HEAD');
    },
  });
  const sinks = openAuditSinks(config, (err) => fastify.log.warn({ err: (err as Error)?.message }, 'audit export'));
  const audit = new AuditLog(store, (err) => fastify.log.error({ err: (err as Error)?.name }, 'audit append failed'), sinks, config.database ? config.nodeName : undefined);
  const facts = new AccessFacts(store);
  const pseudonyms = pseudonymKey ? new Pseudonyms(pseudonymKey) : undefined;
  const services = { facts, ...(pseudonyms ? { pseudonyms } : {}), ...(provenanceSigner ? { provenanceSigner } : {}) };
  const limits = config.rateLimits;
  const rates = options.rates ?? new RequestRates({ windowSeconds: limits.windowSeconds });
  registerBodyParsers(fastify);
  if (config.transport.mode !== 'off') requireHttpsFromNowOn(fastify);
  if (config.transport.mode === 'proxy') onlyFromTheProxy(fastify, config.transport.trustProxy);
  registerPreflight(fastify, ['/fhir', '/fhir/*']);

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const req = toFhirRequest(request);
    const format = negotiateFor(req, request);
    const who = authenticator.authenticate({
      authorization: request.headers.authorization, address: request.ip, publicResource: isPublic(req), breakGlass: breakGlassAsked(request),
      certificateThumbprint: () => presentedCertificateThumbprint(request.raw.socket),
    });
    // A cached token (or no token at all) is decided without waiting for a turn of the microtask queue.
    const principal = who instanceof Promise ? await who : who;
    // From here on the pipeline records the request, whatever becomes of it.
    (request as AuditedRequest).bastionAudited = true;
    const admission = rates.admit(rateCountersFor(principal, limits), requestWeight(req));
    if (admission) {
      setRateHeaders(reply, admission);
      if (!admission.allowed) {
        audit.record(rateLimitedFacts(principal, req, admission, limits));
        raiseRateAlert(alerts, principal, admission, limits);
        const refusal = rateRefusal(admission, limits);
        addCorsHeaders(request, reply);
        return send(reply, { status: refusal.status, headers: refusal.headers, resource: refusal.outcome() }, format, false, request.method === 'HEAD');
      }
    }
    const response = await handle(requestContext(config, store, audit, principal, services), req);
    addCorsHeaders(request, reply);
    return send(reply, response, format, pretty(req), request.method === 'HEAD');
  };
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
  fastify.route({ method: [...methods], url: '/fhir', handler });
  fastify.route({ method: [...methods], url: '/fhir/*', handler });

  fastify.setErrorHandler((err, request, reply) => {
    const fhirError = toFhirError(err);
    if (!(request as AuditedRequest).bastionAudited && isFhirPath(request.url)) audit.record(refusedBeforeThePipeline(request, fhirError.status, fhirError.message));
    if (fhirError.status >= 500) request.log.error({ err: { name: (err as Error)?.name, stack: (err as Error)?.stack } }, 'request failed');
    let format: MediaType = 'application/fhir+json';
    try {
      format = negotiate(undefined, request.headers.accept);
    } catch {
      // The error itself is still reported, in the default format.
    }
    reply.headers(fhirError.headers);
    addCorsHeaders(request, reply);
    void send(reply, { status: fhirError.status, headers: {}, resource: fhirError.outcome() }, format, false, request.method === 'HEAD');
  });
  fastify.setNotFoundHandler((request, reply) => {
    addCorsHeaders(request, reply);
    const err = new FhirError(404, `Nothing is served at ${request.url.split('?')[0]}; the FHIR base is /fhir`, 'not-found');
    void send(reply, { status: 404, headers: {}, resource: err.outcome() }, 'application/fhir+json', false, request.method === 'HEAD');
  });
  fastify.addHook('onClose', async () => {
    // The trail first: a database the rate counts cannot reach must not keep it from being flushed.
    await audit.close();
    await rates.close();
  });
  return { fastify, audit };
}

/**
 * HSTS: a browser that reached the server over HTTPS never tries plain HTTP again (RFC 6797). Set on
 * the raw response so it reaches the authorization server's pages too, which bypass Fastify's reply.
 */
function requireHttpsFromNowOn(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (_request, reply, done) => {
    reply.raw.setHeader('strict-transport-security', 'max-age=31536000');
    done();
  });
}

/**
 * Behind a TLS-terminating proxy the plain-HTTP port must be reachable from that proxy alone:
 * anyone else reaching it would send tokens and PHI in clear, and could name their own address.
 */
function onlyFromTheProxy(fastify: FastifyInstance, trustProxy: string[]): void {
  const trusted = compileTrust(trustProxy);
  fastify.server.on('connection', (socket: Socket) => {
    if (!socket.remoteAddress || !trusted(socket.remoteAddress, 0)) socket.destroy();
  });
}

interface AuditedRequest {
  bastionAudited?: boolean;
}

function isFhirPath(url: string): boolean {
  return url === '/fhir' || url.startsWith('/fhir/') || url.startsWith('/fhir?');
}

/**
 * The audit record of a FHIR request refused before the pipeline saw it: a token that did not
 * verify (an authentication failure at the resource server), or a body, format or size refused
 * on arrival. Every request is on the trail, not only those that got as far as a decision.
 */
function refusedBeforeThePipeline(request: FastifyRequest, status: number, message: string): AuditRecordFacts {
  if (status === 401) {
    return authEventFacts({ kind: 'token-rejected', who: 'unauthenticated', address: request.ip, success: false, detail: message.slice(0, 200) });
  }
  const [path, query] = request.url.slice('/fhir'.length).replace(/^\//, '').split('?', 2);
  const target = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(path ?? '') ? [path!] : [];
  return {
    at: new Date().toISOString(), do: 'operation', st: status, who: 'unauthenticated', ip: request.ip,
    ...(target.length > 0 ? { what: target } : {}), ...(query ? { q: query } : {}),
  };
}

function registerBodyParsers(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  const json = ['application/fhir+json', 'application/json', 'application/json-patch+json', 'application/json+fhir'];
  fastify.addContentTypeParser(json, { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(badRequest(`The body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  fastify.addContentTypeParser(['application/fhir+xml', 'application/xml', 'text/xml'], (_req, _payload, done) =>
    done(new FhirError(415, 'XML is not supported: send application/fhir+json', 'not-supported'), undefined));
}

function toFhirRequest(request: FastifyRequest): FhirRequest {
  const url = request.url;
  const q = url.indexOf('?');
  const path = (q < 0 ? url : url.slice(0, q)).replace(/^\/fhir\/?/, '').replace(/\/$/, '');
  const queryString = q < 0 ? '' : url.slice(q + 1);
  let segments: string[];
  try {
    segments = path === '' ? [] : path.split('/').map(decodeURIComponent);
  } catch {
    throw badRequest('The request URL is not validly percent-encoded');
  }
  const h = request.headers;
  return {
    method: request.method,
    segments,
    query: queryString ? [...new URLSearchParams(queryString)] : [],
    queryString,
    ifMatch: header(h['if-match']),
    ifNoneMatch: header(h['if-none-match']),
    ifModifiedSince: header(h['if-modified-since']),
    ifNoneExist: header(h['if-none-exist']),
    prefer: header(h.prefer),
    contentType: header(h['content-type']),
    body: request.body,
  };
}

/** X-Break-Glass-Patient and X-Break-Glass-Reason: emergency access to one patient, asked with this request. */
function breakGlassAsked(request: FastifyRequest): { patient: string; reason: string } | undefined {
  const patient = header(request.headers['x-break-glass-patient']);
  if (patient === undefined) return undefined;
  return { patient: patient.trim(), reason: (header(request.headers['x-break-glass-reason']) ?? '').slice(0, 1000) };
}

/** The CapabilityStatement is served to anyone (SMART discovery starts there). */
function isPublic(req: FhirRequest): boolean {
  return req.segments.length === 1 && req.segments[0] === 'metadata' && (req.method === 'GET' || req.method === 'HEAD');
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function negotiateFor(req: FhirRequest, request: FastifyRequest): MediaType {
  let format: string | undefined;
  for (const [name, value] of req.query) if (name === '_format') format = value;
  return negotiate(format, request.headers.accept);
}

function pretty(req: FhirRequest): boolean {
  for (const [name, value] of req.query) if (name === '_pretty') return value === 'true';
  return false;
}

function send(reply: FastifyReply, res: FhirResponse, format: MediaType, indent: boolean, head: boolean): FastifyReply {
  reply.code(res.status);
  reply.headers(res.headers);
  // PHI must not linger in shared caches; and the type is what it says.
  reply.header('cache-control', 'no-store');
  reply.header('x-content-type-options', 'nosniff');
  let body = res.json ?? (res.resource ? JSON.stringify(res.resource) : undefined);
  if (body === undefined || res.status === 304) return reply.send();
  if (indent) body = JSON.stringify(JSON.parse(body), null, 2);
  reply.header('content-type', `${format}; charset=utf-8`);
  return reply.send(head ? undefined : body);
}
