// A real OpenID provider (oidc-provider, pinned in package.json) on loopback, for the JWT tests
// of sanctum (host/tests/all/jwt.rs). Not a deployment: in-memory, test clients, fresh keys.
//
//   node provider.mjs AUDIENCE
//
// Listens on 127.0.0.1 (a free port), issues JWT access tokens through the client-credentials
// grant (resource indicators: the `resource` parameter becomes the token's `aud`), and prints
// one JSON line on stdout once it serves:
//   {"issuer", "jwks_uri", "token_endpoint", "kid", "alg", "private_pkcs8", "public_pem"}
// `private_pkcs8` (base64 DER) lets the test sign tokens the provider would never issue
// (expired, not yet valid, wrong issuer...) with the provider's own key, so each case breaks
// exactly one rule. The process stops on SIGTERM or when stdin closes (the test went away).
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const audience = process.argv[2];
if (!audience) {
  console.error('usage: node provider.mjs AUDIENCE');
  process.exit(2);
}

// Two signing keys: EC P-256 for access tokens, RSA because the provider signs ID tokens with
// RS256 by default and insists on having such a key.
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ecKid = `ec-${randomUUID()}`;
const signingKeys = [
  { ...ec.privateKey.export({ format: 'jwk' }), kid: ecKid, alg: 'ES256', use: 'sig' },
  { ...rsa.privateKey.export({ format: 'jwk' }), kid: `rsa-${randomUUID()}`, alg: 'RS256', use: 'sig' },
];

// Test clients: `sanctum-test` (the normal one, groups ops and readers) and `letta`, whose
// tokens carry `sub = letta` like the static-token principal of the same name.
const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret-0123456789abcdef`,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  scope: 'tools',
});

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [client('sanctum-test'), client('letta')],
    jwks: { keys: signingKeys },
    scopes: ['tools'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        // Any http(s) resource is accepted, so the test can also obtain a genuine token for
        // another service (the wrong-audience case).
        getResourceServerInfo: (_ctx, resource) => {
          if (!/^https?:\/\//.test(resource)) throw new errors.InvalidTarget();
          return {
            scope: 'tools',
            audience: resource,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    extraTokenClaims: (_ctx, token) =>
      token.clientId === 'sanctum-test' ? { groups: ['ops', 'readers'] } : undefined,
  });
  provider.on('server_error', (_ctx, err) => console.error('provider error:', err));
  server.on('request', provider.callback());
  const ecPrivate = ec.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  const ecPublic = ec.publicKey.export({ format: 'pem', type: 'spki' });
  process.stdout.write(
    JSON.stringify({
      issuer,
      jwks_uri: `${issuer}/jwks`,
      token_endpoint: `${issuer}/token`,
      kid: ecKid,
      alg: 'ES256',
      private_pkcs8: ecPrivate,
      public_pem: ecPublic,
    }) + '\n',
  );
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
