// A SMART app in a real browser: the official fhirclient library's browser
// build on a loopback page launches against Ward, the user signs in and
// consents on Ward's pages, the app reads the patient and refreshes its
// token with fhirclient's defaults (a public app: no client_id on refresh).
// Then what the browser must never do: show data Ward refused from its cache
// (after a revoke, and for a second user in the same browser), let an
// unlisted origin or the origin "null" read Ward's answers.
// Run by TestBrowserSMARTApp (browser_test.go), which starts ward and sets
// WARD_URL, WARD_CLIENT_ID, WARD_APP_PORT, WARD_PASSWORD, WARD_ALICE_EMAIL,
// WARD_ALICE_ID, WARD_BOB_EMAIL, WARD_BOB_ID.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, serveStatic, screenshot, FHIRCLIENT_JS } from './harness.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through go test -run TestBrowserSMARTApp`);
  return v;
};
const WARD = env('WARD_URL');
const FHIR = WARD + '/fhir';
const PASSWORD = env('WARD_PASSWORD');
const ALICE = env('WARD_ALICE_ID');
const BOB = env('WARD_BOB_ID');

// The app: launch.html starts fhirclient's authorize, app.html finishes it
// and keeps the client on window for the test.
const page = (body) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SMART test app</title>
<script src="/fhir-client.js"></script></head><body><main><h1>SMART test app</h1><p id="status">starting</p></main>
<script>${body}</script></body></html>`;
const appFiles = {
  '/fhir-client.js': { file: FHIRCLIENT_JS },
  '/launch.html': page(`FHIR.oauth2.authorize({ iss: ${JSON.stringify(FHIR)}, clientId: ${JSON.stringify(env('WARD_CLIENT_ID'))},
    scope: 'launch/patient openid fhirUser offline_access patient/*.rs', redirectUri: 'app.html' })
    .catch((e) => { document.getElementById('status').textContent = 'error: ' + e.message; });`),
  '/app.html': page(`window.appReady = FHIR.oauth2.ready().then((client) => {
      window.client = client;
      document.getElementById('status').textContent = 'ready for ' + client.patient.id;
      return client.patient.id;
    }, (e) => { document.getElementById('status').textContent = 'error: ' + e.message; throw e; });`),
};

let browser, app, stranger;
before(async () => {
  app = await serveStatic({ port: Number(env('WARD_APP_PORT')), files: appFiles });
  // Another origin that no application lists.
  stranger = await serveStatic({ files: { '/': '<!doctype html><html lang="en"><title>elsewhere</title><main>elsewhere</main></html>' } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await app?.close();
  await stranger?.close();
});

// signIn launches the app in page p and signs in as email; it returns the
// patient id fhirclient reports once back in the app.
async function signIn(p, email, { consent = 'allow' } = {}) {
  await p.goto(app.url + '/launch.html');
  await p.waitForURL(WARD + '/oauth/authorize**');
  await p.fill('#email', email);
  await p.fill('#password', PASSWORD);
  await Promise.all([p.waitForNavigation(), p.press('#password', 'Enter')]);
  // Ward remembers an Allow: a later launch of the app with the same
  // scopes comes straight back.
  if (!p.url().startsWith(app.url + '/app.html')) {
    await Promise.all([p.waitForURL(app.url + '/app.html**'), p.click(`button[value=${consent}]`)]);
  }
  if (consent !== 'allow') return null;
  return p.evaluate(() => window.appReady);
}

// fetchIn runs fetch in the page with the app's current token (or none)
// and returns the status, or the error a blocked request throws.
const fetchIn = (p, url, token) => p.evaluate(async ({ url, token }) => {
  try {
    const res = await fetch(url, { headers: token ? { Authorization: 'Bearer ' + token } : {} });
    const body = await res.text();
    return { status: res.status, body };
  } catch (e) {
    return { error: String(e) };
  }
}, { url, token });

const tokenOf = (p) => p.evaluate(() => window.client.state.tokenResponse.access_token);

// First, before any Allow is remembered: the consent page's Deny.
test('Deny returns access_denied to the app', async () => {
  const context = await browser.newContext();
  const p = await context.newPage();
  await signIn(p, env('WARD_ALICE_EMAIL'), { consent: 'deny' });
  const back = new URL(p.url());
  assert.equal(back.searchParams.get('error'), 'access_denied', p.url());
  await context.close();
});

test('launch, sign in, consent, read, refresh; a revoked token is never answered from the cache', async () => {
  const context = await browser.newContext();
  const p = await context.newPage();
  assert.equal(await signIn(p, env('WARD_ALICE_EMAIL')), ALICE);
  await screenshot(p, 'fhirclient-ready');
  const me = await p.evaluate(() => window.client.patient.read());
  assert.equal(me.id, ALICE);

  // client.refresh() with fhirclient's defaults: grant_type and
  // refresh_token only.
  const before = await p.evaluate(() => window.client.state.tokenResponse.refresh_token);
  const refreshed = await p.evaluate(async () => {
    await window.client.refresh();
    return window.client.state.tokenResponse;
  });
  assert.ok(refreshed.access_token && refreshed.refresh_token && refreshed.refresh_token !== before, JSON.stringify(refreshed));
  assert.equal((await p.evaluate(() => window.client.patient.read())).id, ALICE);

  // Read, revoke, read again: the second read must reach Ward (401), not
  // come from the browser's cache (the earlier 200).
  const token = await tokenOf(p);
  const url = `${FHIR}/Patient/${ALICE}`;
  const first = await fetchIn(p, url, token);
  assert.equal(first.status, 200, JSON.stringify(first));
  const revoked = await p.evaluate(async ({ ward, clientId, token }) => {
    const res = await fetch(ward + '/oauth/revoke', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: clientId, token }) });
    return res.status;
  }, { ward: WARD, clientId: env('WARD_CLIENT_ID'), token });
  assert.equal(revoked, 200);
  const after = await fetchIn(p, url, token);
  assert.equal(after.status, 401, `after revoke: ${JSON.stringify(after)}`);
  assert.doesNotMatch(after.body, /Alice/);
  await context.close();
});

test('a second user in the same browser never sees the first user\'s record', async () => {
  const context = await browser.newContext();
  const p = await context.newPage();
  assert.equal(await signIn(p, env('WARD_ALICE_EMAIL')), ALICE);
  const url = `${FHIR}/Patient/${ALICE}`;
  const alice = await fetchIn(p, url, await tokenOf(p));
  assert.equal(alice.status, 200);
  assert.match(alice.body, /Alice/);

  // Alice signs out of Ward (its sign-in is remembered for the next
  // launch), then Bob signs in in the same browser (same cache) and asks
  // for Alice's record: Ward says 403, and so must the browser.
  await p.goto(WARD + '/oauth/apps');
  await Promise.all([p.waitForNavigation(), p.click('button[value=signout]')]);
  assert.equal(await signIn(p, env('WARD_BOB_EMAIL')), BOB);
  const bob = await fetchIn(p, url, await tokenOf(p));
  assert.equal(bob.status, 403, `Bob reading Alice: ${JSON.stringify(bob)}`);
  assert.doesNotMatch(bob.body, /Alice/);
  // The same URL without any token: 401, not the cached 200.
  const anon = await fetchIn(p, url, null);
  assert.equal(anon.status, 401, JSON.stringify(anon));
  await context.close();
});

test('CORS: the listed origin reads; an unlisted origin and "null" cannot', async () => {
  const context = await browser.newContext();
  const p = await context.newPage();
  assert.equal(await signIn(p, env('WARD_ALICE_EMAIL')), ALICE);
  const token = await tokenOf(p);
  const url = `${FHIR}/Patient/${ALICE}`;
  assert.equal((await fetchIn(p, url, token)).status, 200);

  // The same token from an origin no application lists.
  await p.goto(stranger.url + '/');
  const unlisted = await fetchIn(p, url, token);
  assert.ok(unlisted.error, `an unlisted origin read Ward's answer: ${JSON.stringify(unlisted)}`);
  const unlistedPublic = await fetchIn(p, `${FHIR}/metadata`, null);
  assert.ok(unlistedPublic.error, `an unlisted origin read the capability statement: ${JSON.stringify(unlistedPublic)}`);

  // The opaque origin "null" (a data: page).
  await p.goto('data:text/html,<!doctype html><title>null</title>');
  const fromNull = await fetchIn(p, url, token);
  assert.ok(fromNull.error, `origin null read Ward's answer: ${JSON.stringify(fromNull)}`);
  await context.close();
});
