// A real OpenID provider for the tests (npm oidc-provider), on 127.0.0.1.
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {"port": 0, "clients": [{client_id, client_secret, redirect_uris}],
//          "accounts": {"<id>": {"acr": "...", "claims": {...}}},
//          "acr_values": ["..."]}
// The login interaction is automatic: the account is the authorization request's
// `login_hint` (a test controls who logs in and with which claims and acr); an
// unknown hint is refused with access_denied. Consent is granted automatically.
// Prints "READY <issuer>" on stdout when it listens.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// The packages live in the project's test-tools/ (npm ci), not next to this script.
const tools = createRequire(new URL('../../../test-tools/package.json', import.meta.url));
const load = async (name) => import(pathToFileURL(tools.resolve(name)).href);
const { generateKeyPair, exportJWK } = await load('jose');
const { default: Provider } = await load('oidc-provider');

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const accounts = config.accounts;

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };

const hsaClaims = ['employeeHsaId', 'commissionHsaId', 'healthCareProviderHsaId',
  'healthCareUnitHsaId', 'commissionPurpose', 'commissionRight', 'commissions'];

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  jwks: { keys: [jwk] },
  cookies: { keys: ['test-cookie-key-not-secret'] },
  acrValues: config.acr_values || [],
  claims: {
    acr: null, auth_time: null, sid: null, iss: null,
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name'],
    hsa: hsaClaims,
  },
  scopes: ['openid', 'profile', 'hsa'],
  conformIdTokenClaims: false, // custom claims in the ID token, like the regional IdP
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: 600, AuthorizationCode: 60, IdToken: 600 },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return { accountId: sub, async claims() { return { sub, ...account.claims }; } };
  },
});

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match || ctx.method !== 'GET') return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    const account = accounts[params.login_hint];
    if (!account) {
      result = { error: 'access_denied', error_description: 'unknown test account' };
    } else {
      result = { login: { accountId: params.login_hint, acr: account.acr, amr: ['smartcard'] } };
    }
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    result = { consent: { grantId: await grant.save() } };
  }
  const target = await provider.interactionResult(ctx.req, ctx.res, result,
    { mergeWithLastSubmission: false });
  ctx.redirect(target);
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
