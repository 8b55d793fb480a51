import { hash, type X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

const thumbprints = new WeakMap<Socket, string | null>();

/**
 * The client certificate this connection presented, as RFC 8705's `x5t#S256` (SHA-256 of the DER,
 * base64url); undefined without one. Any presented certificate counts, CA-verified or self-signed:
 * the handshake proved the client holds its private key, which is what binding a token relies on.
 */
export function presentedCertificateThumbprint(socket: Socket): string | undefined {
  let known = thumbprints.get(socket);
  if (known === undefined) {
    const cert = presentedCertificate(socket);
    known = cert ? hash('sha256', cert.raw, 'base64url') : null;
    thumbprints.set(socket, known);
  }
  return known ?? undefined;
}

/** The client certificate of a TLS connection, if it presented one. */
export function presentedCertificate(socket: Socket): X509Certificate | undefined {
  const tls = socket as Partial<TLSSocket>;
  return tls.encrypted ? tls.getPeerX509Certificate?.() : undefined;
}

/** RFC 8705 2.1.2: does the certificate carry the registered subject DN or subject alternative name? */
export function certificateSubjectMatches(cert: X509Certificate, property: string, expected: string): boolean {
  if (property === 'tls_client_auth_subject_dn') return distinguishedName(cert.subject) === distinguishedName(expected);
  const prefix = ({ tls_client_auth_san_dns: 'DNS:', tls_client_auth_san_ip: 'IP Address:', tls_client_auth_san_email: 'email:', tls_client_auth_san_uri: 'URI:' } as Record<string, string>)[property];
  if (!prefix || !cert.subjectAltName) return false;
  return cert.subjectAltName.split(', ').some((name) => name.startsWith(prefix) && name.slice(prefix.length) === expected);
}

/**
 * A DN compared by its attributes, whatever their order and spacing: node writes a certificate's
 * subject one attribute a line in certificate order, RFC 4514 strings run the other way with commas.
 */
function distinguishedName(dn: string): string {
  return dn.split(/\n|(?<!\\),/).map((part) => part.trim()).filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    return eq < 0 ? part : `${part.slice(0, eq).trim().toUpperCase()}=${part.slice(eq + 1).trim()}`;
  }).sort().join(',');
}
