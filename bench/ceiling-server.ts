/**
 * The ceiling for `npm run bench`: a bare Fastify route that answers every GET /fhir/Patient/:id
 * with the same bytes (one stored Patient, read from the file named by argv[2]) and the same
 * content-type as Bastion. No store, no pipeline, no audit: what Node + Fastify can do on this
 * machine with this payload. Prints `ceiling listening at <url>` once bound (port 0: a free port).
 *
 * Run by bench/run.ts in its own process; by hand: node bench/ceiling-server.ts body.json [port]
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node bench/ceiling-server.ts <body-file> [port]\n');
  process.exit(2);
}
const body = readFileSync(file);
const port = Number(process.argv[3] ?? 0);

const fastify = Fastify({ logger: false });
fastify.get('/fhir/Patient/:id', (_request, reply) => {
  reply.header('content-type', 'application/fhir+json; charset=utf-8');
  return reply.send(body);
});

const url = await fastify.listen({ host: '127.0.0.1', port });
process.stdout.write(`ceiling listening at ${url}\n`);

const stop = () => void fastify.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
