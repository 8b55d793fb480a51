import { acceptsClientCertificates, type Config } from '../config/config.ts';

/** The authorization server's endpoints, under its issuer URL (oidc-provider's routes). */
export function oauthEndpoints(issuer: string) {
  return {
    authorize: `${issuer}/authorize`,
    token: `${issuer}/token`,
    jwks: `${issuer}/jwks`,
    introspect: `${issuer}/token/introspection`,
    revoke: `${issuer}/token/revocation`,
  };
}

/**
 * `/.well-known/smart-configuration` (SMART App Launch 2.x, conformance.html): what a client
 * needs to find and use the authorization server, and the capabilities it supports.
 */
export function smartConfiguration(config: Config): Record<string, unknown> {
  const issuer = config.auth.issuer;
  const e = oauthEndpoints(issuer);
  const mtls = acceptsClientCertificates(config);
  return {
    issuer,
    jwks_uri: e.jwks,
    authorization_endpoint: e.authorize,
    token_endpoint: e.token,
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'none', ...(mtls ? ['tls_client_auth', 'self_signed_tls_client_auth'] : [])],
    // RFC 8705 3.3: access tokens can be bound to the client's certificate.
    ...(mtls ? { tls_client_certificate_bound_access_tokens: true } : {}),
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    scopes_supported: [
      'openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter', 'offline_access', 'online_access',
      'patient/*.cruds', 'patient/*.rs', 'user/*.cruds', 'user/*.rs', 'system/*.cruds', 'system/*.rs',
      'patient/*.read', 'patient/*.write', 'user/*.read', 'user/*.write', 'system/*.read', 'system/*.write',
    ],
    response_types_supported: ['code'],
    introspection_endpoint: e.introspect,
    revocation_endpoint: e.revoke,
    code_challenge_methods_supported: ['S256'],
    capabilities: [
      'launch-ehr', 'launch-standalone', 'authorize-post',
      'client-public', 'client-confidential-symmetric', 'client-confidential-asymmetric',
      'context-ehr-patient', 'context-ehr-encounter', 'context-standalone-patient', 'context-banner', 'context-style',
      'permission-offline', 'permission-online', 'permission-patient', 'permission-user', 'permission-v1', 'permission-v2',
      'sso-openid-connect',
    ],
  };
}

/** The CapabilityStatement's rest.security under auth=smart: SMART service coding and the oauth-uris extension. */
export function capabilitySecurity(config: Config): Record<string, unknown> | undefined {
  if (config.auth.mode !== 'smart') return undefined;
  const e = oauthEndpoints(config.auth.issuer);
  return {
    cors: true,
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }], text: 'OAuth2 using SMART-on-FHIR profile' }],
    extension: [{
      url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
      extension: [
        { url: 'authorize', valueUri: e.authorize },
        { url: 'token', valueUri: e.token },
        { url: 'introspect', valueUri: e.introspect },
        { url: 'revoke', valueUri: e.revoke },
      ],
    }],
  };
}
