// A real OpenID Provider for steward's tests and docker-compose: panva's
// certified oidc-provider with the features steward's single sign-on uses
// (authorization code + PKCE, back-channel logout, RP-initiated logout,
// introspection, revocation, client credentials). Test fixture only: users
// and passwords come from users.json, keys are generated at start.
//
// Environment:
//   PORT            listen port (default 9400; 0 picks one)
//   HOST            listen address (default 127.0.0.1; 0.0.0.0 in a container)
//   ISSUER          issuer URL (default http://127.0.0.1:PORT)
//   CLIENTS_JSON    JSON array of client metadata (default: one `steward` web client
//                   redirecting to http://127.0.0.1:8080/auth/callback, plus `steward-api`
//                   for client credentials)
//   TEST_CONTROL=1  enables POST /test/users/:id/groups {"groups": [...]} (change a user's
//                   groups, as an administrator would at the provider)
//
// Browserless login, as the tests drive it: GET /auth?… → 303 /interaction/:uid;
// POST /interaction/:uid with login=…&password=… → 303 /auth/:uid → 303 to the
// client's redirect URI with `code`. GET /interaction/:uid shows a plain login form.
//
// Once listening it prints one line: `oidc-provider listening on <issuer>`.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

import Provider from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const users = JSON.parse(readFileSync(join(here, 'users.json'), 'utf8'));

const defaultClients = [
  {
    client_id: 'steward',
    client_secret: 'steward-test-secret',
    redirect_uris: ['http://127.0.0.1:8080/auth/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1:8080/'],
    backchannel_logout_uri: 'http://127.0.0.1:8080/auth/backchannel-logout',
    backchannel_logout_session_required: true,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'openid email profile groups offline_access api',
  },
  {
    client_id: 'steward-api',
    client_secret: 'steward-api-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api',
  },
  {
    // A client steward's identity.yaml does not list.
    client_id: 'stranger',
    client_secret: 'stranger-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api',
  },
];

const clients = process.env.CLIENTS_JSON ? JSON.parse(process.env.CLIENTS_JSON) : defaultClients;

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function readJson(req) {
  const form = [];
  for await (const chunk of req) form.push(chunk);
  return JSON.parse(Buffer.concat(form).toString('utf8') || '{}');
}

const configuration = {
  clients,
  // So `groups` reaches the ID token, not only the userinfo endpoint.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access', 'api'],
  pkce: { required: () => true },
  // Refresh tokens for every client allowed the grant (steward re-validates
  // roles with them), without the offline_access consent dance.
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:steward:api',
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: 'urn:steward:api',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
      }),
      useGrantedResource: () => true,
    },
  },
  // User access tokens carry the user's groups, so an API client acting for a
  // user is mapped to roles the same way as a signed-in user.
  // They also carry `auth_time` (RFC 9068 §2.2.1), which steward's admin re-runs check.
  async extraTokenClaims(ctx, token) {
    const user = token.accountId && users[token.accountId];
    if (!user) return undefined;
    const { AuthorizationCode: code, RefreshToken: refresh } = ctx.oidc.entities;
    const authTime = code?.authTime ?? refresh?.authTime;
    return authTime ? { groups: user.groups, auth_time: authTime } : { groups: user.groups };
  },
  ttl: { AccessToken: 600, IdToken: 600, RefreshToken: 86400, Session: 86400, Grant: 86400 },
  async findAccount(_ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: user.email,
          email_verified: true,
          name: user.name,
          groups: users[id].groups,
        };
      },
    };
  },
  // First-party clients: grant what they ask for, so there is no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
    grant.addResourceScope('urn:steward:api', 'api');
    await grant.save();
    return grant;
  },
  // The SSRF guard refuses back-channel logout POSTs to 127.0.0.0/8, where the
  // tests' relying party listens; drop its dispatcher (test fixture only).
  fetch(url, options) {
    const { dispatcher: _dropped, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
};

const port = Number(process.env.PORT ?? 9400);
const server = createServer();
server.listen(port, process.env.HOST ?? '127.0.0.1', () => {
  const { port: actual } = server.address();
  const issuer = process.env.ISSUER ?? `http://127.0.0.1:${actual}`;
  const provider = new Provider(issuer, configuration);
  provider.proxy = true;

  provider.use(async (ctx, next) => {
    const m = ctx.path.match(/^\/interaction\/([^/]+)$/);
    if (m && ctx.method === 'GET') {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Sign in</title><form method="post" action="/interaction/${escapeHtml(details.uid)}">
<label>User <input name="login" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>`;
      return;
    }
    if (m && ctx.method === 'POST') {
      const form = await readForm(ctx.req);
      const login = form.get('login');
      const user = users[login];
      const result = user && user.password === form.get('password')
        ? { login: { accountId: login } }
        : { error: 'access_denied', error_description: 'wrong user or password' };
      ctx.respond = false;
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      return;
    }
    const g = ctx.path.match(/^\/test\/users\/([^/]+)\/groups$/);
    if (g && ctx.method === 'POST' && process.env.TEST_CONTROL === '1') {
      const body = await readJson(ctx.req);
      if (!users[g[1]] || !Array.isArray(body.groups)) {
        ctx.status = 400;
        return;
      }
      users[g[1]].groups = body.groups;
      ctx.status = 204;
      return;
    }
    await next();
  });

  server.on('request', provider.callback());
  console.log(`oidc-provider listening on ${issuer}`);
});
