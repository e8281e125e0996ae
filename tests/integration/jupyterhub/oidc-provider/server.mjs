// A real OpenID Connect provider for the JupyterHub tests, built on the
// certified `oidc-provider` library. It stands in for INDIGO IAM: static
// users with a login form, and the `wlcg.groups` scope whose claim lists the
// user's groups with a leading slash ("/ml-infn"), as IAM sends them.
//
// Environment:
//   ISSUER        issuer URL, e.g. https://jh-idp:8443
//   PORT          port to listen on (HTTPS when TLS_CERT/TLS_KEY are set)
//   TLS_CERT      PEM certificate (chain) file
//   TLS_KEY       PEM private key file
//   CLIENT_ID, CLIENT_SECRET   the one registered client
//   REDIRECT_URIS comma-separated redirect URIs of that client
//   USERS_FILE    JSON: [{"username", "password", "email", "groups": ["/g"]}]
//
// Consent is granted without asking (a first-party client, as IAM's
// pre-approved clients); login is a plain form with fields `login` and
// `password`.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const issuer = env('ISSUER');
const port = Number(env('PORT', '8443'));
const users = new Map(
  JSON.parse(fs.readFileSync(env('USERS_FILE'), 'utf8')).map((u) => [u.username, u]),
);

// Signing key and cookie key: fresh at each start (tests only).
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };
const scopes = ['openid', 'offline_access', 'email', 'profile', 'address', 'wlcg', 'wlcg.groups'];

const configuration = {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: env('REDIRECT_URIS').split(',').map((u) => u.trim()).filter(Boolean),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  clientBasedCORS: () => true,
  scopes,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    address: ['address'],
    wlcg: ['wlcg.ver'],
    'wlcg.groups': ['wlcg.groups'],
  },
  conformIdTokenClaims: false,
  ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 3600, IdToken: 3600, RefreshToken: 86400 },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  jwks: { keys: [jwk] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const user = users.get(id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: user.name ?? id,
          preferred_username: id,
          email: user.email ?? `${id}@example.org`,
          email_verified: true,
          address: { country: 'IT' },
          'wlcg.ver': '1.0',
          'wlcg.groups': user.groups ?? [],
        };
      },
    };
  },
  // Consent without a prompt: every scope and claim the client asks for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(scopes.join(' '));
    grant.addOIDCClaims(['preferred_username', 'email', 'wlcg.groups']);
    await grant.save();
    return grant;
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const loginPage = (uid, message) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Test IAM - sign in</title></head>
<body><h1>Test IAM</h1>
${message ? `<p id="error">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Username <input name="login" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form></body></html>`;

const readBody = (req) => new Promise((resolve, reject) => {
  let data = '';
  req.on('data', (chunk) => { data += chunk; if (data.length > 65536) req.destroy(); });
  req.on('end', () => resolve(new URLSearchParams(data)));
  req.on('error', reject);
});

async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const loginPost = req.method === 'POST' && req.url.endsWith('/login');
    if (details.prompt.name !== 'login') {
      // Consent is handled by loadExistingGrant; anything else ends here.
      await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
      return;
    }
    if (!loginPost) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(details.uid));
      return;
    }
    const form = await readBody(req);
    const user = users.get(form.get('login') ?? '');
    const given = Buffer.from(form.get('password') ?? '');
    const expected = Buffer.from(user?.password ?? '');
    if (!user || given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
      console.log(`login refused for ${JSON.stringify(form.get('login'))}`);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(details.uid, 'Invalid username or password'));
      return;
    }
    console.log(`login ${user.username} groups ${JSON.stringify(user.groups ?? [])}`);
    await provider.interactionFinished(req, res, { login: { accountId: user.username } },
      { mergeWithLastSubmission: false });
  } catch (err) {
    console.error('interaction error', err);
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction error: ${err.message}\n`);
  }
}

const callback = provider.callback();
const handler = (req, res) => (req.url.startsWith('/interaction/') ? interaction(req, res) : callback(req, res));
const server = process.env.TLS_CERT
  ? https.createServer({ cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(env('TLS_KEY')) }, handler)
  : http.createServer(handler);
server.listen(port, () => console.log(`oidc provider ${issuer} listening on ${port}, ${users.size} users`));
