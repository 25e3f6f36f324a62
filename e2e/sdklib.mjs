// What the SDK-driven tests share: their environment (set by the Go test
// that starts `ward serve`), client-credential tokens, an SDK client for a
// token, and a check of the SDK's error shape.
import assert from 'node:assert/strict';
import Oystehr from '@oystehr/sdk';

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this test through its Go test in e2e/`);
  return v;
};
export const base = env('WARD_URL');
export const projectApiUrl = `${base}/v1`;
export const fhirApiUrl = `${base}/fhir`;
export const services = { projectApiUrl, fhirApiUrl };

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

export const sdk = (accessToken, projectId) => new Oystehr({ accessToken, projectId, services, retry: { retries: 0 } });

// rejects: the promise fails with the SDK's error of this code (and message).
export async function rejects(promise, code, messagePart) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `want code ${code}, got ${err.code}: ${err.message}`);
    if (messagePart) assert.match(String(err.message), messagePart);
    return true;
  });
}
