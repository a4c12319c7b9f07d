// A small, real OpenID Connect provider for tests and the local dev
// environment: panva's certified oidc-provider, with four hard-coded demo users
// and its own server-rendered login form. Everything lives in memory and is
// lost on exit (the provider says so once on stderr: that is intended here).
//
// Configuration, by environment only:
//   OIDC_ISSUER     e.g. https://127.0.0.1:34567 (an https origin, no path);
//                   the server listens on its host and port
//   OIDC_TLS_CERT   PEM certificate file for that listener
//   OIDC_TLS_KEY    PEM private key file for that listener
//   OIDC_CLIENTS    JSON array of confidential clients:
//                   [{"client_id", "client_secret", "redirect_uris": [...],
//                     "post_logout_redirect_uris": [...]}]
//
// Once listening it prints exactly one line to stdout,
// "oidc-provider listening on <issuer>"; everything else goes to stderr.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

import Provider from 'oidc-provider';

// The provider prints its notices with console.info, which is stdout; stdout
// carries only the ready line, so send everything else to stderr.
console.log = console.error;
console.info = console.error;

function fail(message) {
  console.error(`oidc-provider: ${message}`);
  process.exit(1);
}

function env(name) {
  const value = process.env[name];
  if (!value) fail(`${name} must be set`);
  return value;
}

const USERS = new Map(Object.entries({
  alice: { password: 'alice-password', name: 'Alice', groups: ['dev', 'approval-gate:requesters'] },
  bob: { password: 'bob-password', name: 'Bob', groups: ['sre', 'approval-gate:approvers'] },
  dave: { password: 'dave-password', name: 'Dave', groups: ['sre', 'approval-gate:approvers'] },
  carol: { password: 'carol-password', name: 'Carol', groups: ['support'] },
}));

const issuer = env('OIDC_ISSUER');
let issuerUrl;
try {
  issuerUrl = new URL(issuer);
} catch {
  fail(`OIDC_ISSUER is not a URL: ${issuer}`);
}
// Routes are served at the root, so the issuer must be a bare https origin
// (no path, not even a trailing slash: `iss` has to match it byte for byte).
if (issuerUrl.protocol !== 'https:' || issuerUrl.origin !== issuer) {
  fail(`OIDC_ISSUER must be an https origin without a path, like https://127.0.0.1:34567 (got ${issuer})`);
}

let tls;
try {
  tls = { cert: readFileSync(env('OIDC_TLS_CERT')), key: readFileSync(env('OIDC_TLS_KEY')) };
} catch (err) {
  fail(`cannot read the TLS certificate or key: ${err.message}`);
}

let clients;
try {
  clients = JSON.parse(env('OIDC_CLIENTS'));
  if (!Array.isArray(clients)) throw new Error('not a JSON array');
  for (const c of clients) {
    const strings = (v) => Array.isArray(v) && v.every((s) => typeof s === 'string');
    if (typeof c?.client_id !== 'string' || typeof c.client_secret !== 'string'
      || !strings(c.redirect_uris) || !strings(c.post_logout_redirect_uris ?? [])) {
      throw new Error(`each needs client_id, client_secret, redirect_uris (and may have post_logout_redirect_uris): ${JSON.stringify(c)}`);
    }
  }
} catch (err) {
  fail(`OIDC_CLIENTS must be a JSON array of clients: ${err.message}`);
}
clients = clients.map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  redirect_uris: c.redirect_uris,
  post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  // client_secret_post is accepted too: the provider treats the two secret
  // methods as interchangeable for a client registered with either.
  token_endpoint_auth_method: 'client_secret_basic',
}));

// --- our pages ------------------------------------------------------------

const STYLE = 'body{font-family:sans-serif;max-width:22rem;margin:3rem auto;padding:0 1rem}'
  + 'label,input,button{display:block;width:100%;box-sizing:border-box;margin:.3rem 0}'
  + 'input,button{padding:.5rem;font-size:1rem}#error{color:#b00020}';
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');
// Forms post to this server, which then redirects to a client: browsers check
// those redirects against form-action too, so the clients' origins are listed.
function originOf(uri) {
  try {
    return new URL(uri).origin;
  } catch {
    return 'null';
  }
}
const clientOrigins = new Set(clients
  .flatMap((c) => [...c.redirect_uris, ...c.post_logout_redirect_uris])
  .map(originOf)
  .filter((origin) => origin !== 'null'));
// No script anywhere; the one <style> element is allowed by its hash.
const CSP = [
  "default-src 'none'",
  `style-src 'sha256-${STYLE_HASH}'`,
  `form-action 'self' ${[...clientOrigins].join(' ')}`.trim(),
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': CSP,
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

function loginPage(uid, { username = '', error = false } = {}) {
  return page('Sign in', `${error ? '<p id="error" role="alert">Invalid user name or password.</p>\n' : ''}\
<form method="post" action="/interaction/${escapeHtml(uid)}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required autofocus value="${escapeHtml(username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="sign-in" type="submit">Sign in</button>
</form>`);
}

// For pages rendered through the provider's own koa context.
function renderInto(ctx, status, html) {
  ctx.status = status;
  ctx.set(PAGE_HEADERS);
  ctx.body = html;
}

// --- the provider ---------------------------------------------------------

// A fresh RS256 signing key per start; none is ever committed.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients,
  // Only the two client-secret methods: every client is confidential.
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  // No CORS for any client: the token exchange happens server side.
  clientBasedCORS: () => false,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },

  // Each key of `claims` is also a supported scope (scopes_supported).
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid'], // no offline_access: no refresh tokens
  // By default (OIDC Core 5.4) the scope-requested claims go to userinfo only
  // when an access token is issued; the Kubernetes JWT authenticator reads
  // the ID token, so put them in the ID token as well.
  conformIdTokenClaims: false,
  async findAccount(ctx, sub) {
    const user = USERS.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: sub,
          name: user.name,
          email: `${sub}@example.com`,
          email_verified: true,
          groups: user.groups,
        };
      },
    };
  },

  responseTypes: ['code'],
  // PKCE with S256 for every client, confidential ones included.
  pkce: { methods: ['S256'], required: () => true },

  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    // The bundled development login accepts any user and password: off.
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // Logging out needs one POST carrying the provider's xsrf value (the
      // hidden form it hands us). Without script nothing can submit it by
      // itself, so show a single "Sign out" button that ends the whole session.
      async logoutSource(ctx, form) {
        renderInto(ctx, 200, page('Sign out', `<p>Sign out of ${escapeHtml(ctx.host)}?</p>
${form}
<button id="sign-out" type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`));
      },
      // Only shown when the client passed no post_logout_redirect_uri.
      async postLogoutSuccessSource(ctx) {
        renderInto(ctx, 200, page('Signed out', '<p id="signed-out">You are signed out.</p>'));
      },
    },
  },

  async renderError(ctx, out) {
    const rows = Object.entries(out).map(([k, v]) => `<p><b>${escapeHtml(k)}</b>: ${escapeHtml(v)}</p>`);
    renderInto(ctx, ctx.status || 500, page('Sign-in error', rows.join('\n')));
  },

  // Every TTL is set, which also keeps the provider from printing notices
  // about its defaults. Seconds.
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    BackchannelAuthenticationRequest: 600,
    ClientCredentials: 600,
    DeviceCode: 600,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 3600,
    Session: 3600,
  },
});
// No `provider.proxy`: nothing sits in front, koa sees the TLS socket itself,
// so ctx.secure is true and the provider's cookies get the Secure flag.

// Static clients are checked lazily; check them now so a bad one fails start.
for (const { client_id: id } of clients) {
  try {
    await provider.Client.find(id);
  } catch (err) {
    fail(`client ${id}: ${err.error_description ?? err.message}`);
  }
}

provider.on('server_error', (ctx, err) => console.error('oidc-provider: server error:', err));

// --- interactions: our login form and the automatic consent ----------------

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16 * 1024) throw Object.assign(new Error('form too large'), { statusCode: 413 });
  }
  return new URLSearchParams(body);
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    throw Object.assign(new Error('interaction mismatch'), { statusCode: 400 });
  }
  const { prompt, params } = details;

  if (prompt.name === 'consent') {
    // The person signed in and the client is one of ours: grant what the
    // client asked for without a consent screen.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }

  if (prompt.name !== 'login') {
    throw Object.assign(new Error(`unexpected prompt ${prompt.name}`), { statusCode: 400 });
  }

  if (req.method === 'GET') {
    res.writeHead(200, PAGE_HEADERS).end(loginPage(uid, { username: params.login_hint ?? '' }));
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'GET, POST' }).end();
    return;
  }

  const form = await readForm(req);
  const username = form.get('username') ?? '';
  const user = USERS.get(username);
  if (!user || form.get('password') !== user.password) {
    res.writeHead(200, PAGE_HEADERS).end(loginPage(uid, { username, error: true }));
    return;
  }
  // The provider now asks for consent, which comes back here (above).
  await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
}

const providerCallback = provider.callback();

const server = createServer(tls, async (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  const match = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(pathname);
  if (!match) {
    providerCallback(req, res);
    return;
  }
  try {
    await interaction(req, res, match[1]);
  } catch (err) {
    // An expired or unknown interaction (SessionNotFound, 400) is the usual case.
    const status = err.statusCode ?? err.status ?? 500;
    if (status >= 500) console.error('oidc-provider: interaction failed:', err);
    if (!res.headersSent) {
      const text = status >= 500 ? 'Something went wrong.' : 'This sign-in request expired or is not valid. Start again from the application.';
      res.writeHead(status, PAGE_HEADERS).end(page('Sign-in error', `<p id="error" role="alert">${escapeHtml(text)}</p>`));
    } else {
      res.end();
    }
  }
});

server.on('error', (err) => fail(`cannot listen on ${issuer}: ${err.message}`));
// URL.hostname keeps the brackets of an IPv6 literal; listen() wants them off.
server.listen(Number(issuerUrl.port || 443), issuerUrl.hostname.replace(/^\[(.*)\]$/, '$1'), () => {
  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
