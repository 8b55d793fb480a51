import type { KekVersion } from '../crypto/key-provider.ts';
import type { Finding } from './finding.ts';

/** Quarterly rotation: a current key older than this is reported. */
export const maxKeyAgeDays = 90;

const control = '164.312(a)(2)(iv) encryption and decryption: key rotation';

/** The KEK and each data key whose current version is older than a quarter. */
export function keyAgeFindings(kek: KekVersion[], dataKeys: { purpose: string; id: string; created: string }[], now = Date.now()): Finding[] {
  const findings: Finding[] = [];
  const old = (created: string) => Math.floor((now - Date.parse(created)) / 86_400_000);
  const current = kek.find((v) => v.current);
  if (current && old(current.created) > maxKeyAgeDays) {
    findings.push({ control, severity: 'medium', message: `the key-encryption key ${current.id} is ${old(current.created)} days old (rotate at least every ${maxKeyAgeDays}): bastion keys rotate` });
  }
  for (const key of dataKeys) {
    // Rotating these has costs a deployment chooses to pay (sessions end, pseudonyms change): reported, not urged.
    if (key.purpose === 'cookie' || key.purpose === 'pseudonym') continue;
    if (old(key.created) > maxKeyAgeDays) {
      findings.push({ control, severity: 'medium', message: `the ${key.purpose} data key ${key.id} is ${old(key.created)} days old (rotate at least every ${maxKeyAgeDays}): bastion keys rotate` });
    }
  }
  return findings;
}
