import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { SecureContextOptions, SecureVersion, TlsOptions } from 'node:tls';
import type { Config } from '../config/config.ts';
import { devCertificateFiles, loadOrCreateDevCertificate } from './dev-certificate.ts';

/** The TLS settings of the listener (config `tls=on`). */
export interface TlsSettings {
  /** TLSv1.3 unless a deployment lowers it to TLSv1.2 explicitly; nothing older is accepted. */
  minVersion: 'TLSv1.3' | 'TLSv1.2';
  /** PEM files of a real certificate (chain) and its key; without them a development certificate is made in the data dir. */
  certFile?: string;
  keyFile?: string;
  /** Client certificates: off, optional (the app decides per client) or required (no handshake without a certificate the CA list verifies). */
  clientCertificates: 'off' | 'optional' | 'required';
  /** PEM file of the CAs client certificates are verified against. */
  clientCaFile?: string;
}

/** The TLS options the HTTPS server starts with. */
export async function tlsServerOptions(config: Config, tls: TlsSettings): Promise<TlsOptions> {
  if (!tls.certFile) await loadOrCreateDevCertificate(config.dataDir, config.host);
  return {
    ...contextOptions(config, tls),
    // A client certificate is asked for only where clients may use one; browsers are not prompted otherwise.
    requestCert: tls.clientCertificates !== 'off',
    // Optional: the handshake completes and the authorization server and resource server decide per client.
    rejectUnauthorized: tls.clientCertificates === 'required',
  };
}

/** Certificate, key, client CAs and protocol limits: what a reload replaces. */
function contextOptions(config: Config, tls: TlsSettings): SecureContextOptions {
  const files = tls.certFile && tls.keyFile ? { cert: tls.certFile, key: tls.keyFile } : devCertificateFiles(config.dataDir);
  return {
    cert: readFileSync(files.cert),
    key: readFileSync(files.key),
    ...(tls.clientCaFile ? { ca: readFileSync(tls.clientCaFile) } : {}),
    minVersion: tls.minVersion as SecureVersion,
    // TLS 1.2, when allowed, only with forward-secret AEAD suites (TLS 1.3's suites are all of that kind).
    ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256',
    honorCipherOrder: true,
  };
}

interface ReloadableServer {
  setSecureContext(options: SecureContextOptions): void;
}

/**
 * Certificates are renewed in place (certbot, cert-manager): when a configured file changes the
 * server takes the new certificate, key or client CAs for new connections, without a restart. A pair
 * that does not load (a key written before its certificate) leaves the current one serving until the
 * next change; `onReload` reports each outcome without the material.
 */
export function watchCertificates(server: ReloadableServer, config: Config, tls: TlsSettings, onReload: (error?: Error) => void, intervalMs = 2000): () => void {
  const files = [tls.certFile, tls.keyFile, tls.clientCaFile].filter((f): f is string => Boolean(f));
  const reload = () => {
    try {
      server.setSecureContext(contextOptions(config, tls));
      onReload();
    } catch (err) {
      onReload(err as Error);
    }
  };
  for (const file of files) watchFile(file, { interval: intervalMs, persistent: false }, reload);
  return () => {
    for (const file of files) unwatchFile(file, reload);
  };
}
