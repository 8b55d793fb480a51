import { KeyProviderError } from '../key-provider.ts';

/**
 * The address of a key service (Vault, KMS): https, since a token or a signed request carrying a
 * data key must never cross the network in clear text; plain http only to loopback (a local agent,
 * a test double). No credentials, query or fragment in it.
 */
export function serviceUrl(text: string, service: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KeyProviderError(`The ${service} is not a URL`);
  }
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new KeyProviderError(`The ${service} must be https (http only to a loopback address): ${url.origin}`);
  if (url.username || url.password || url.search || url.hash) throw new KeyProviderError(`The ${service} must not carry credentials, a query or a fragment`);
  return url;
}
