// Ward's web console in a real browser: a developer signs in through
// Ward's own sign-in page, switches project, writes an invalid policy and
// sees the rule's error inline, fixes it and explains a request, edits the
// project; a read-only developer sees no write controls and a forced POST
// is 403; a POST without (or with another session's) CSRF token is 403.
// axe-core on every page (no serious or critical violations), no CSP
// violations, no request to another host, a screenshot of each page.
// Run by TestConsole (console_test.go), which starts ward and sets
// WARD_URL, WARD_PASSWORD, WARD_ADMIN_EMAIL, WARD_READER_EMAIL,
// WARD_READER_ROLE (a role id) and WARD_OTHER_PROJECT (a project's name).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleSuite, screenshot } from './harness.mjs';

const { env, WARD, open, check } = consoleSuite('console', 'TestConsole');
const PASSWORD = env('WARD_PASSWORD');

// signIn opens the console in a fresh context and signs in as email.
async function signIn(email, shots = false) {
  const { context, page, errors, hosts } = await open();
  let res = await page.goto(WARD + '/console');
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-security-policy'], /default-src 'none'/);
  if (shots) await check(page, 'welcome');
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.waitForURL(/\/oauth\/authorize/);
  if (shots) await screenshot(page, 'console-signin');
  // No consent step follows, so the page promises none.
  assert.doesNotMatch(await page.locator('main').textContent(), /can still say no/);
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await page.click('button[value="signin"]');
  await page.waitForURL(/\/console\/dashboard$/); // the landing page
  await page.getByRole('link', { name: 'Project', exact: true }).click();
  await page.waitForURL(/\/console\/project$/);
  await page.getByRole('heading', { name: 'Project settings' }).waitFor();
  const cookie = (await context.cookies()).find((c) => c.name === 'ward_console');
  assert.ok(cookie, 'session cookie set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.path, '/console');
  return { context, page, errors, hosts };
}

const csrfOf = (page) => page.locator('input[name="csrf"]').first().getAttribute('value');

let adminSession;

test('a developer signs in, switches project and edits the settings', async () => {
  const s = await signIn(env('WARD_ADMIN_EMAIL'), true);
  adminSession = s;
  const { page } = s;
  await check(page, 'project');
  // The switcher lists both projects.
  const options = await page.locator('#switch-project option').allTextContents();
  assert.ok(options.includes(env('WARD_OTHER_PROJECT')), options.join(', '));
  const first = await page.locator('#switch-project').inputValue();
  await page.selectOption('#switch-project', { label: env('WARD_OTHER_PROJECT') });
  await page.getByRole('button', { name: 'Switch' }).click();
  await page.waitForURL(/\/console\/project$/);
  assert.equal(await page.locator('#name').inputValue(), env('WARD_OTHER_PROJECT'));
  await page.selectOption('#switch-project', first);
  await page.getByRole('button', { name: 'Switch' }).click();
  await page.waitForURL(/\/console\/project$/);
  assert.notEqual(await page.locator('#name').inputValue(), env('WARD_OTHER_PROJECT'));
  // Edit the description, sign-up and its default patient role.
  await page.fill('#description', 'Edited in the console');
  await page.check('#signup');
  await page.selectOption('#patient-role', { label: 'console-reader' });
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.waitForURL(/saved=1/);
  await page.getByText('Saved.').waitFor();
  assert.equal(await page.locator('#description').inputValue(), 'Edited in the console');
  assert.equal(await page.locator('#signup').isChecked(), true);
  assert.equal(await page.locator('#patient-role').inputValue(), env('WARD_READER_ROLE'));
  // A role that does not exist: the API's message next to the select.
  const res = await page.request.post(WARD + '/console/project', { form: {
    csrf: await csrfOf(page), name: 'x', description: '', defaultPatientRoleId: '00000000-0000-0000-0000-000000000000' } });
  assert.ok(res.status() >= 400 && res.status() < 500, String(res.status()));
  assert.match(await res.text(), /<select id="patient-role"[^>]*aria-invalid="true"/);
  await page.selectOption('#patient-role', '');
  await page.uncheck('#signup');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.waitForURL(/saved=1/);
  assert.equal(await page.locator('#patient-role').inputValue(), '');
});

test('an invalid policy shows the rule and the API message inline; fixed, it explains a request', async () => {
  const { page } = adminSession;
  await page.getByRole('link', { name: 'Roles' }).click();
  await page.waitForURL(/\/console\/roles$/);
  await check(page, 'roles');
  // The filter.
  await page.fill('#q', 'reader');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/q=reader/);
  assert.deepEqual(await page.locator('table.list tbody td:first-child').allTextContents(), ['console-reader']);

  await page.goto(WARD + '/console/roles/new');
  await check(page, 'role-new');
  await page.fill('#name', 'nurse');
  await page.fill('#policy', JSON.stringify({ rule: [
    { action: ['FHIR:Read'], resource: ['FHIR:Patient'], effect: 'Allow' },
    { action: ['FHIR:Nope'], resource: ['FHIR:Patient'], effect: 'Allow' },
  ] }, null, 2));
  // Validated as you type, by the API's own validation.
  const live = page.locator('#policy-live');
  await live.filter({ hasText: 'Rule 2:' }).waitFor();
  assert.match(await live.textContent(), /unknown action "FHIR:Nope"/);
  assert.equal(await page.locator('#policy').getAttribute('aria-invalid'), 'true');
  await screenshot(page, 'console-role-typing');
  const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/console/roles/new')),
    page.getByRole('button', { name: 'Create role' }).click()]);
  assert.equal(res.status(), 400);
  const problem = page.locator('#problem');
  await problem.waitFor();
  const text = await problem.textContent();
  assert.match(text, /^Rule 2:/, text);
  assert.match(text, /unknown action "FHIR:Nope"/, text);
  assert.equal(await page.locator('#policy').getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#policy').inputValue(), /FHIR:Nope/, 'what was typed is kept');
  await check(page, 'role-invalid');

  // Not JSON at all: the API parser's message.
  await page.fill('#policy', '{"rule": [');
  // The answer is a new page: its validation script (a module, run after
  // parsing) listens only once loaded, so typing waits for the load.
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Create role' }).click()]);
  assert.match(await page.locator('#problem').textContent(), /invalid JSON/);

  await page.fill('#policy', JSON.stringify({ rule: [
    { action: ['FHIR:Read'], resource: ['FHIR:Patient'], effect: 'Allow' },
    { action: ['FHIR:Delete'], resource: ['FHIR:*'], effect: 'Deny' },
  ] }, null, 2));
  await live.filter({ hasText: 'Valid policy.' }).waitFor();
  await page.getByRole('button', { name: 'Create role' }).click();
  await page.waitForURL(/\/console\/roles\/[^/]+\?saved=1$/);
  await page.getByRole('heading', { name: 'Role nurse' }).waitFor();
  const roleURL = page.url().replace(/\?.*$/, '');

  await page.fill('#explain-action', 'FHIR:Read');
  await page.fill('#explain-resource', 'FHIR:Patient:123');
  await page.getByRole('button', { name: 'Explain' }).click();
  let ex = await page.locator('#explanation').textContent();
  assert.match(ex, /Allowed, decided by rule 1 of role nurse/, ex);
  await check(page, 'role-explain');
  await page.fill('#explain-action', 'FHIR:Delete');
  await page.getByRole('button', { name: 'Explain' }).click();
  ex = await page.locator('#explanation').textContent();
  assert.match(ex, /Denied, decided by rule 2 of role nurse/, ex);
  await page.fill('#explain-action', 'FHIR:Search');
  await page.getByRole('button', { name: 'Explain' }).click();
  ex = await page.locator('#explanation').textContent();
  assert.match(ex, /Denied: no rule allows it/, ex);
  // A refused explain shows the API's message next to the box.
  const res2 = await page.request.post(roleURL + '/explain',
    { form: { csrf: await csrfOf(page), action: 'FHIR:Read', resource: '' } });
  assert.equal(res2.status(), 400);
  assert.match(await res2.text(), /id="explain-problem"[^>]*>Action and resource are required/);
});

let m2mURL;

test('an M2M client is created and its secret rotated, shown once', async () => {
  const { page } = adminSession;
  await page.getByRole('link', { name: 'M2M clients' }).click();
  await page.waitForURL(/\/console\/m2m$/);
  await check(page, 'm2m-list');
  await page.getByRole('link', { name: 'New M2M client' }).click();
  await page.waitForURL(/\/console\/m2m\/new$/);
  await check(page, 'm2m-new');
  await page.fill('#name', 'billing-bot');
  await page.getByLabel('nurse').check();
  await page.getByRole('button', { name: 'Create client' }).click();
  await page.waitForURL(/\/console\/m2m\/[^/]+\?created=1$/);
  m2mURL = page.url().replace(/\?.*$/, '');
  assert.match(await page.locator('dl.facts').textContent(), /nurse/);
  const clientId = (await page.locator('#client-id').textContent()).trim();

  const token = (secret) => page.request.post(WARD + '/oauth/token',
    { data: { grant_type: 'client_credentials', client_id: clientId, client_secret: secret } });
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  const first = (await page.locator('#secret').textContent()).trim();
  assert.ok(first.length >= 32, first);
  await check(page, 'm2m-secret');
  assert.equal((await token(first)).status(), 200);
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  const second = (await page.locator('#secret').textContent()).trim();
  assert.notEqual(second, first);
  assert.equal((await token(second)).status(), 200);
  assert.equal((await token(first)).status(), 401, 'the old secret no longer works');
  // Shown once: the page itself never shows it again.
  await page.goto(m2mURL);
  assert.equal(await page.locator('#secret').count(), 0);
  assert.doesNotMatch(await page.content(), new RegExp(second));
  // The filter.
  await page.goto(WARD + '/console/m2m?q=billing');
  assert.deepEqual(await page.locator('table.list tbody td:first-child').allTextContents(), ['billing-bot']);
  await page.goto(WARD + '/console/m2m?q=nothing-like-it');
  assert.equal(await page.locator('table.list').count(), 0);
});

test('a POST without the session CSRF token is 403 and changes nothing', async () => {
  const { page } = adminSession;
  const form = { name: 'csrf-victim', policy: '{"rule":[]}' };
  let res = await page.request.post(WARD + '/console/roles/new', { form, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  res = await page.request.post(WARD + '/console/roles/new', { form: { ...form, csrf: 'forged' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  res = await page.request.post(WARD + '/console/roles/validate', { form: { policy: '{}' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  await page.goto(WARD + '/console/roles?q=csrf-victim');
  assert.equal(await page.locator('table.list').count(), 0, 'no role was created');
});

test('a read-only developer sees no write controls and a forced POST is 403', async () => {
  const s = await signIn(env('WARD_READER_EMAIL'));
  const { page } = s;
  assert.equal(await page.locator('form[action="/console/project"]').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Save settings' }).count(), 0);
  await check(page, 'reader-project');
  await page.goto(WARD + '/console/roles');
  assert.equal(await page.getByRole('link', { name: 'New role' }).count(), 0);
  await check(page, 'reader-roles');
  const role = env('WARD_READER_ROLE');
  await page.goto(WARD + '/console/roles/' + role);
  assert.equal(await page.locator('textarea').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Save role' }).count(), 0);
  await check(page, 'reader-role');
  await page.goto(WARD + '/console/m2m');
  assert.equal(await page.getByRole('link', { name: 'New M2M client' }).count(), 0);
  await check(page, 'reader-m2m-list');
  await page.goto(m2mURL);
  assert.equal(await page.getByRole('button', { name: 'Rotate secret' }).count(), 0);
  await check(page, 'reader-m2m');
  const csrf = await csrfOf(page);
  let res = await page.goto(WARD + '/console/roles/new');
  assert.equal(res.status(), 403);

  for (const [path, form] of [
    ['/console/roles/new', { csrf, name: 'forced', policy: '{"rule":[]}' }],
    ['/console/roles/' + role, { csrf, name: 'renamed', policy: '{"rule":[]}' }],
    ['/console/project', { csrf, name: 'renamed', description: '' }],
    [new URL(m2mURL).pathname + '/rotate-secret', { csrf }],
    ['/console/m2m/new', { csrf, name: 'forced' }],
  ]) {
    res = await page.request.post(WARD + path, { form, maxRedirects: 0 });
    assert.equal(res.status(), 403, path);
    assert.match(await res.text(), /IAM:CreateRole|IAM:UpdateRole|Project:UpdateProjectInfo|IAM:RotateM2MClientSecret|IAM:CreateM2MClient/, path);
  }
  // Another session's CSRF token does not work here either.
  const adminCSRF = await csrfOf(adminSession.page);
  res = await page.request.post(WARD + '/console/signout', { form: { csrf: adminCSRF }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  assert.deepEqual(s.errors, []);
  assert.deepEqual([...s.hosts], [new URL(WARD).host]);
  await s.context.close();
});

test('sign-out ends the session', async () => {
  const { page, context, errors, hosts } = adminSession;
  await page.goto(WARD + '/console/project');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('link', { name: 'Sign in' }).waitFor();
  await check(page, 'signed-out');
  await page.goto(WARD + '/console/roles');
  assert.match(page.url(), /\/console$/);
  assert.equal(await page.getByRole('link', { name: 'Roles' }).count(), 0);
  // Cancel on Ward's sign-in page comes back to the console, signed out.
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.waitForURL(/\/oauth\/authorize/);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.waitForURL(/\/console\/callback/);
  await page.getByText('You cancelled the sign-in.').waitFor();
  await check(page, 'cancelled');
  assert.equal((await context.cookies()).filter((c) => c.name === 'ward_console').length, 0);
  assert.deepEqual(errors, []);
  assert.deepEqual([...hosts], [new URL(WARD).host]);
  await context.close();
});
