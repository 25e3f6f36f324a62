// What the SDK-driven tests share: their environment (set by the Go test
// that starts `ward serve`), client-credential tokens, an SDK client for a
// token, and a check of the SDK's error shape.
import assert from 'node:assert/strict';
import Oystehr from '@oystehr/sdk';
import { readFileSync } from 'node:fs';

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this test through its Go test in e2e/`);
  return v;
};
export const base = env('WARD_URL');
export const projectApiUrl = `${base}/v1`;
export const fhirApiUrl = `${base}/fhir`;
// services is every base URL the SDK calls, as admin-credentials.json gives
// them (cmd/ward serve.go sdkServices): an SDK given fewer sends the rest of
// its calls, with Ward's token, to Oystehr's public hosts.
export const services = {
  projectApiUrl,
  fhirApiUrl,
  terminologyApiUrl: `${base}/v1`,
  erxApiUrl: `${base}/erx/v3`,
  labApiUrl: `${base}/lab/v1`,
  faxApiUrl: `${base}/fax/v1`,
};

// wardOnlyFetch is the SDK's fetch: it refuses (and records) any request to
// a host other than Ward's, so a test fails if the SDK leaves Ward.
export const foreignRequests = [];
const wardHost = new URL(base).host;
export const wardOnlyFetch = (input, init) => {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  if (url.host !== wardHost) {
    foreignRequests.push(url.href);
    return Promise.reject(new Error(`request to a host other than Ward: ${url.href}`));
  }
  return fetch(input, init);
};

// token asks for a client-credentials token with the Oystehr-style JSON
// body, audience included.
export async function token(clientId, clientSecret) {
  const res = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, audience: 'https://api.zapehr.com' }),
  });
  const body = await res.json();
  if (res.status !== 200) throw Object.assign(new Error(body.error_description ?? 'token failed'), { status: res.status });
  assert.equal(body.token_type, 'Bearer');
  assert.ok(body.expires_in > 0);
  return body.access_token;
}

export const sdk = (accessToken, projectId) =>
  new Oystehr({ accessToken, projectId, services, fetch: wardOnlyFetch, retry: { retries: 0 } });

// adminCredentials reads the server's admin-credentials.json, whose path the
// Go test passes as WARD_ADMIN_CREDENTIALS.
export const adminCredentials = () => JSON.parse(readFileSync(env('WARD_ADMIN_CREDENTIALS'), 'utf8'));

// sdkFromCredentials configures the SDK from admin-credentials.json alone
// (its `services`), as the README tells users to; its fetch refuses other hosts.
export function sdkFromCredentials(creds, accessToken) {
  assert.ok(creds.services, 'admin-credentials.json has no services');
  for (const k of ['projectApiUrl', 'fhirApiUrl', 'terminologyApiUrl', 'erxApiUrl', 'labApiUrl', 'faxApiUrl']) {
    assert.ok(creds.services[k]?.startsWith(base), `admin-credentials.json services.${k} = ${creds.services[k]}`);
  }
  return new Oystehr({ accessToken, projectId: creds.projectId, services: creds.services, fetch: wardOnlyFetch, retry: { retries: 0 } });
}

// rejects: the promise fails with the SDK's error of this code (and message).
export async function rejects(promise, code, messagePart) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `want code ${code}, got ${err.code}: ${err.message}`);
    if (messagePart) assert.match(String(err.message), messagePart);
    return true;
  });
}

// until polls fn every 25 ms until it returns something truthy, which it
// returns, failing after ms.
export async function until(what, fn, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// m2mToken makes an M2M client that holds only the rules given (a role of
// its own, made by admin's SDK) and returns its access token.
export async function m2mToken(admin, name, rule) {
  const role = await admin.role.create({ name, accessPolicy: { rule } });
  const m2m = await admin.m2m.create({ name, roles: [role.id] });
  const { secret } = await admin.m2m.rotateSecret({ id: m2m.id });
  return token(m2m.clientId, secret);
}
