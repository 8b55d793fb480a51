import type { FastifyReply } from 'fastify';
import type { Principal } from '../auth/principal.ts';
import type { FhirRequest } from '../rest/context.ts';
import type { Interaction } from '../access/interaction.ts';
import { rateLimitReason, type RateLimitSettings } from '../access/rate-limits.ts';
import type { Admission } from '../monitor/request-rates.ts';
import type { Alerts } from '../monitor/alerts.ts';
import { auditFacts, type AuditRecordFacts } from '../audit/audit-record.ts';
import { FhirError } from '../fhir/outcome.ts';
import { route } from '../rest/router.ts';

/**
 * The HTTP side of rate limits (the rule is access/rate-limits.ts): the `X-RateLimit-*` headers
 * every limited response carries (as @fastify/rate-limit and most APIs send them), the 429 with
 * `Retry-After`, and its audit record and alert.
 */
export function setRateHeaders(reply: FastifyReply, admission: Admission): void {
  reply.header('x-ratelimit-limit', String(admission.counter.limit));
  reply.header('x-ratelimit-remaining', String(admission.remaining));
  reply.header('x-ratelimit-reset', String(admission.reset));
}

/** The answer to a refused request: 429 to wait, or 422 for a batch no wait would let through. */
export function rateRefusal(admission: Admission, settings: RateLimitSettings): FhirError {
  // Waiting never lets it through: the client must split the batch, so it is not told to retry.
  if (admission.neverFits) {
    return new FhirError(422, `The batch has more entries than the ${admission.counter.limit} requests per ${settings.windowSeconds} s this caller may make: split it`, 'too-costly');
  }
  return new FhirError(429, `Too many requests: ${rateLimitReason(admission.counter, settings.windowSeconds)} (a batch counts each entry); retry after ${admission.retryAfter} s`, 'throttled', {
    'retry-after': String(admission.retryAfter ?? 1),
    'x-ratelimit-limit': String(admission.counter.limit),
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': String(admission.reset),
  });
}

/** The audit record of a request refused for its rate: who, what it asked for, and the limit it met. */
export function rateLimitedFacts(principal: Principal, req: FhirRequest, admission: Admission, settings: RateLimitSettings): AuditRecordFacts {
  let interaction: Interaction = { kind: 'operation', query: req.queryString || undefined };
  try {
    interaction = route(req).interaction;
  } catch {
    // A request the router refuses is still recorded, as an operation.
  }
  const target = interaction.resourceType && interaction.id ? [`${interaction.resourceType}/${interaction.id}`] : [];
  const facts = auditFacts(principal, interaction, admission.neverFits ? 422 : 429, target, new Date().toISOString());
  facts.rs = [rateLimitReason(admission.counter, settings.windowSeconds)];
  return facts;
}

/** Once per key and window: someone's requests came faster than their role allows (a bulk pull, a runaway app). */
export function raiseRateAlert(alerts: Alerts | undefined, principal: Principal, admission: Admission, settings: RateLimitSettings): void {
  if (!alerts || !admission.firstRefusal) return;
  const from = admission.counter.scope === 'address' ? ` (from ${principal.address})` : '';
  alerts.raise({ kind: 'rate-limit', severity: 'medium', at: new Date().toISOString(), who: principal.id, detail: `${rateLimitReason(admission.counter, settings.windowSeconds)}${from}` });
}

/** How many requests one HTTP request counts as: a batch or transaction, one per entry (each is an interaction of its own). */
export function requestWeight(req: FhirRequest): number {
  if (req.segments.length !== 0 || req.method !== 'POST') return 1;
  const body = req.body as { resourceType?: unknown; type?: unknown; entry?: unknown } | undefined;
  if (!body || body.resourceType !== 'Bundle' || (body.type !== 'batch' && body.type !== 'transaction') || !Array.isArray(body.entry)) return 1;
  return Math.max(1, body.entry.length);
}
