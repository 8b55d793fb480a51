import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * CORS for browser apps (SMART JS clients) calling the FHIR API from their own origin. Access is
 * by bearer token, never by cookie, so any origin may ask and no credentials are allowed
 * cross-origin. Headers are added only to requests that carry an Origin: a hook on every request
 * (@fastify/cors) cost 4 % of the read throughput, for the many clients that are not browsers.
 */
const exposed = 'Location, Content-Location, ETag, Last-Modified, WWW-Authenticate, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset';
const allowedHeaders = 'Authorization, Content-Type, Accept, If-Match, If-None-Match, If-Modified-Since, If-None-Exist, Prefer';
const allowedMethods = 'GET, HEAD, POST, PUT, PATCH, DELETE';

export function addCorsHeaders(request: FastifyRequest, reply: FastifyReply): void {
  if (request.headers.origin === undefined) return;
  reply.header('access-control-allow-origin', '*');
  reply.header('access-control-expose-headers', exposed);
}

/** Preflight requests for the FHIR API (and its discovery document). */
export function registerPreflight(fastify: FastifyInstance, urls: string[]): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.code(204);
    if (request.headers.origin !== undefined) {
      reply.header('access-control-allow-origin', '*');
      reply.header('access-control-allow-methods', allowedMethods);
      reply.header('access-control-allow-headers', allowedHeaders);
      reply.header('access-control-max-age', '600');
    }
    return reply.send();
  };
  for (const url of urls) fastify.options(url, handler);
}
