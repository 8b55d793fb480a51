import { webcrypto, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

/** Where the development certificate and its key live in the data dir. */
export const devCertificateFiles = (dataDir: string) => ({ cert: join(dataDir, 'tls-dev-cert.pem'), key: join(dataDir, 'tls-dev-key.pem') });

const validDays = 365;

/**
 * A self-signed certificate for the addresses the server answers on, made on first start so that a
 * fresh install speaks HTTPS from its first request. Clients trust it by pinning the PEM
 * (`curl --cacert data/tls-dev-cert.pem`); production deployments configure real certificates.
 * Made again when it expires within a week or no longer names the host listened on.
 */
export async function loadOrCreateDevCertificate(dataDir: string, host: string): Promise<{ cert: string; key: string }> {
  const files = devCertificateFiles(dataDir);
  const names = subjectNames(host);
  if (existsSync(files.cert) && existsSync(files.key)) {
    const cert = readFileSync(files.cert, 'utf8');
    if (stillServes(cert, names)) return { cert, key: readFileSync(files.key, 'utf8') };
  }
  const made = await createCertificate(names);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // Key first: a certificate on disk always has its key beside it.
  writeAtomically(files.key, made.key);
  writeAtomically(files.cert, made.cert);
  return made;
}

function subjectNames(host: string): { dns: string[]; ip: string[] } {
  const dns = new Set(['localhost']);
  const ip = new Set(['127.0.0.1', '::1']);
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) {
    if (bare !== '0.0.0.0' && bare !== '::') ip.add(bare);
  } else if (bare) dns.add(bare.toLowerCase());
  return { dns: [...dns], ip: [...ip] };
}

function stillServes(pem: string, names: { dns: string[]; ip: string[] }): boolean {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return false;
  }
  if (Date.parse(cert.validTo) - Date.now() < 7 * 86_400_000) return false;
  return names.dns.every((n) => cert.checkHost(n) !== undefined) && names.ip.every((a) => cert.checkIP(a) !== undefined);
}

async function createCertificate(names: { dns: string[]; ip: string[] }): Promise<{ cert: string; key: string }> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    name: 'CN=Bastion development certificate, O=Bastion',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + validDays * 86_400_000),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dns.map((value) => ({ type: 'dns' as const, value })),
        ...names.ip.map((value) => ({ type: 'ip' as const, value })),
      ]),
    ],
  }, webcrypto as unknown as Crypto);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: certificate.toString('pem') + '\n', key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n' };
}

function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, path);
}
