// A user's password reset link and two-step sign-in (TOTP), end to end:
// the published @oystehr/sdk (configured from admin-credentials.json alone)
// asks for the link and resets MFA; chromium follows the link, sets the
// password, signs in, enrols (codes computed here, RFC 6238), signs out,
// signs in with password and code, and after resetMfa with the password
// alone. Each new page is checked with axe-core. Run by
// TestPasswordResetAndMFABrowser (mfa_test.go), which sets WARD_URL,
// WARD_ADMIN_CREDENTIALS and another project's WARD_B_CLIENT_ID/SECRET.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { env, base as WARD, adminCredentials, sdkFromCredentials, sdk, token, rejects, foreignRequests } from '../sdklib.mjs';
import { launch, serveStatic, pkce, authorizeURL, axe, screenshot, watchConsole } from './harness.mjs';

// totp is RFC 6238's code of a time step (HMAC-SHA1, 6 digits).
function totp(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = crypto.createHmac('sha1', secret).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  return String((h.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}
const step = () => Math.floor(Date.now() / 30_000);

function base32(s) {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out = [];
  for (const c of s.replace(/[\s=]/g, '')) {
    const i = abc.indexOf(c);
    assert.ok(i >= 0, `not base32: ${c}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// The codes check against RFC 6238's published vectors first.
test('totp matches RFC 6238', () => {
  const secret = Buffer.from('12345678901234567890');
  assert.equal(totp(secret, Math.floor(59 / 30)), '287082');
  assert.equal(totp(secret, Math.floor(1111111109 / 30)), '081804');
});

const creds = adminCredentials();
const admin = sdkFromCredentials(creds, await token(creds.clientId, creds.clientSecret));
const other = sdk(await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET')));
const PASSWORD = 'a long new password, chosen now';
const EMAIL = 'mfa.user@example.org';

let browser, app;
before(async () => {
  app = await serveStatic({ files: { '/callback': '<!doctype html><html lang="en"><title>App</title><main><h1>Back in the app</h1></main></html>' } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await app?.close();
});

async function accessible(page, name) {
  await screenshot(page, name);
  assert.deepEqual(await axe(page), [], `${name}: axe violations`);
  assert.equal(await page.locator('main').count(), 1, `${name}: one <main>`);
  assert.equal(await page.locator('h1').count(), 1, `${name}: one <h1>`);
}

test('reset link, enrolment, sign-in with a code, resetMfa', async () => {
  const role = await admin.role.create({ name: 'mfa-reader', accessPolicy: { rule: [{ resource: ['FHIR:Patient:*'], action: ['FHIR:Read'], effect: 'Allow' }] } });
  const patient = await admin.fhir.create({ resourceType: 'Patient', name: [{ given: ['Mia'], family: 'Fa' }] });
  const callback = app.url + '/callback';
  const application = await admin.application.create({ name: 'MFA app', allowedCallbackUrls: [callback] });
  const user = await admin.user.invite({ applicationId: application.id, email: EMAIL, profile: `Patient/${patient.id}`, roles: [role.id] });

  // The SDK's calls, and their attacks.
  await rejects(admin.user.resetPasswordLink({ id: user.id, redirectUrl: 'https://evil.example/cb' }), 400, /redirectUrl/);
  await rejects(other.user.resetPasswordLink({ id: user.id, redirectUrl: callback }), 404);
  await rejects(other.user.resetMfa({ id: user.id }), 404);
  await rejects(admin.user.resetMfa({ id: 'no-such-user' }), 404);
  const { link } = await admin.user.resetPasswordLink({ id: user.id, redirectUrl: callback });
  assert.ok(link.startsWith(`${WARD}/oauth/reset/`), link);

  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const errors = watchConsole(page);

  // Follow the link, choose a password.
  assert.equal((await page.goto(link)).status(), 200);
  assert.match(await page.textContent('main'), new RegExp(EMAIL));
  await accessible(page, 'reset');
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
  assert.equal(await page.textContent('h1'), 'Your password is changed');
  assert.equal(await page.getAttribute('a[href^="http://127.0.0.1"]', 'href'), callback);
  await accessible(page, 'reset-done');
  assert.equal((await page.goto(link)).status(), 404, 'the link works once');

  // Sign in with the new password, allow the application.
  const signIn = async (state) => {
    const { challenge } = pkce();
    await page.goto(authorizeURL(WARD, { clientId: application.clientId, redirectUri: callback, scope: 'openid', state, challenge }));
    await page.fill('#email', EMAIL);
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
  };
  const backInApp = (state) => {
    const back = new URL(page.url());
    assert.equal(back.origin + back.pathname, callback, page.url());
    assert.ok(back.searchParams.get('code'));
    assert.equal(back.searchParams.get('state'), state);
  };
  await signIn('s1');
  await Promise.all([page.waitForURL(callback + '?**'), page.click('button[value=allow]')]);
  backInApp('s1');

  // Enrol from the applications page: the key, then a code of it.
  await page.goto(`${WARD}/oauth/apps`);
  assert.match(await page.textContent('main'), /Two-step sign-in\s*Off/);
  await Promise.all([page.waitForNavigation(), page.click('button[value=mfa-start]')]);
  assert.equal(await page.textContent('h1'), 'Set up two-step sign-in');
  const uri = await page.getAttribute('a[href^="otpauth:"]', 'href');
  assert.match(uri, /^otpauth:\/\/totp\/.*secret=[A-Z2-7]+/);
  const secret = base32(await page.textContent('#mfa-key'));
  assert.equal(new URL(uri).searchParams.get('secret'), (await page.textContent('#mfa-key')).replace(/\s/g, ''));
  await accessible(page, 'enrol');
  await page.fill('#code', totp(secret, step()));
  await Promise.all([page.waitForNavigation(), page.press('#code', 'Enter')]);
  assert.match(await page.textContent('main'), /Two-step sign-in\s*On/);
  await accessible(page, 'apps-mfa-on');

  // Sign out; the password now asks for a code.
  await Promise.all([page.waitForNavigation(), page.click('button[value=signout]')]);
  assert.match(await page.textContent('h1'), /signed out/);
  await signIn('s2');
  assert.equal(await page.textContent('h1'), 'Enter your code');
  await accessible(page, 'code');
  const good = totp(secret, step() + 1);
  await page.fill('#code', String((Number(good) + 500_000) % 1_000_000).padStart(6, '0'));
  await Promise.all([page.waitForNavigation(), page.press('#code', 'Enter')]);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'code');
  assert.equal(await page.getAttribute('#code', 'aria-invalid'), 'true');
  assert.match(await page.textContent('#problem'), /Wrong or already used code/);
  await accessible(page, 'code-error');
  await page.fill('#code', good);
  await Promise.all([page.waitForURL(callback + '?**'), page.press('#code', 'Enter')]);
  backInApp('s2');

  // An administrator resets MFA: the password alone signs in.
  await admin.user.resetMfa({ id: user.id });
  await context.clearCookies();
  await signIn('s3');
  await page.waitForURL(callback + '?**');
  backInApp('s3');
  assert.deepEqual(errors, []);
  await context.close();
  assert.deepEqual(foreignRequests, []);
});
