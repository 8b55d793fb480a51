import type { FastifyInstance } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';

/**
 * Hands every request under the issuer's path to oidc-provider (a Koa app), except the routes
 * Bastion serves itself there (the interaction pages, the launch API). The hand-off happens in
 * onRequest, before Fastify reads the body, since the provider parses its own.
 */
export function mountProvider(fastify: FastifyInstance, prefix: string, ownPrefixes: string[], provider: () => { provider: Provider; issuer: string }): void {
  let callback: ReturnType<Provider['callback']> | undefined;
  let host = '';
  // A callback hook, not an async one: it runs on every request, and most are not for the provider.
  fastify.addHook('onRequest', (request, reply, done) => {
    const path = request.raw.url ?? '';
    if (!path.startsWith(prefix) || !(path.length === prefix.length || path[prefix.length] === '/' || path[prefix.length] === '?')
      || ownPrefixes.some((p) => path.startsWith(`${prefix}${p}`))) {
      done();
      return;
    }
    if (!callback) {
      // Built on first use: a server on port 0 knows its issuer URL only once it listens.
      const p = provider();
      callback = p.provider.callback();
      host = new URL(p.issuer).host;
    }
    reply.hijack();
    const req = request.raw as IncomingMessage & { originalUrl?: string; baseUrl?: string };
    const res: ServerResponse = reply.raw;
    // The provider builds endpoint URLs from the Host header; pin it to the issuer's so a forged
    // Host cannot put another origin into discovery documents or accepted assertion audiences.
    req.headers.host = host;
    // Behind a proxy the provider reads the forwarded headers (for the protocol): the address is
    // Fastify's, resolved through the trusted proxies only, and the host is pinned above, never forwarded.
    delete req.headers['x-forwarded-host'];
    req.headers['x-forwarded-for'] = request.ip;
    req.originalUrl = path;
    req.baseUrl = prefix;
    req.url = path.slice(prefix.length) || '/';
    void callback(req, res);
  });
}
