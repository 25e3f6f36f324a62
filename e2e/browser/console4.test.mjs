// Ward's web console, third slice, in a real browser: developers (invite,
// the link shown once, list and filter), applications (create with a
// redirect URI, rotate the secret shown once), users (invite through the
// application with a Patient profile, list and filter, the profile link),
// exports (start one, follow it to done, download a file, cancel another),
// a resource's highlighted JSON; a read-only developer sees no write
// controls and forced POSTs are 403. axe-core on every page (no serious or
// critical violations), no CSP errors, no request to another host, a
// screenshot of each page. Run by TestConsole4 (console4_test.go), which
// sets WARD_URL, WARD_PASSWORD, WARD_ADMIN_EMAIL, WARD_READER_EMAIL,
// WARD_PATIENT (a Patient id) and WARD_ROLE (a role's name).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleSuite } from './harness.mjs';

const { env, WARD, check, signIn } = consoleSuite('console4', 'TestConsole4', { acceptDownloads: true });


const csrfOf = (page) => page.locator('input[name="csrf"]').first().getAttribute('value');

let admin;
let developerPath;
let userPath;
let appPath;

test('developers: invite one (the link once), list and filter, its page', async () => {
  admin = await signIn(env('WARD_ADMIN_EMAIL'));
  const { page } = admin;
  await page.getByRole('link', { name: 'Developers' }).click();
  await page.waitForURL(/\/console\/developers$/);
  await check(page, 'developers');
  await page.getByRole('link', { name: 'Invite a developer' }).click();
  await page.waitForURL(/\/console\/developers\/invite$/);
  await check(page, 'developer-invite');
  // A bad email first: the API's message at the field.
  await page.fill('#email', 'not-an-email@');
  await page.fill('#name', 'Grace Hopper');
  await page.locator('#email').evaluate((el) => { el.type = 'text'; }); // past the browser's own check
  await page.getByRole('button', { name: 'Invite' }).click();
  await page.locator('#email[aria-invalid="true"]').waitFor();
  assert.match(await page.locator('#problem').textContent(), /email/i);
  await page.fill('#email', 'invited@example.org');
  await page.getByLabel(env('WARD_ROLE')).check();
  await page.getByRole('button', { name: 'Invite' }).click();
  await page.getByText('Invitation created').waitFor();
  assert.match(await page.locator('#invitation').textContent(), /\/invite\/\S+$/);
  await check(page, 'developer-invited');
  await page.goto(WARD + '/console/developers');
  await page.fill('#q', 'INVITED@');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/q=INVITED/);
  const rows = await page.locator('#developers tbody tr').allTextContents();
  assert.equal(rows.length, 1);
  assert.match(rows[0], /invited@example.org/);
  await page.getByRole('link', { name: 'invited@example.org' }).click();
  await page.waitForURL(/\/console\/developers\/[^/]+$/);
  developerPath = new URL(page.url()).pathname;
  assert.ok(await page.getByLabel(env('WARD_ROLE')).isChecked());
  await check(page, 'developer');
});

test('applications: create with a redirect URI, rotate the secret (shown once)', async () => {
  const { page } = admin;
  await page.getByRole('link', { name: 'Applications' }).click();
  await page.waitForURL(/\/console\/applications$/);
  await check(page, 'applications-empty');
  await page.getByRole('link', { name: 'New application' }).click();
  await check(page, 'application-new');
  await page.fill('#name', 'Patient portal');
  await page.fill('#callbacks', 'not a url');
  await page.getByRole('button', { name: 'Create application' }).click();
  await page.locator('#callbacks[aria-invalid="true"]').waitFor();
  await page.fill('#callbacks', 'https://portal.example.org/callback');
  await page.getByRole('button', { name: 'Create application' }).click();
  await page.getByText('Saved.').waitFor();
  appPath = new URL(page.url()).pathname;
  assert.match(await page.locator('dl.facts').textContent(), /https:\/\/portal\.example\.org\/callback/);
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  const secret = (await page.locator('#secret').textContent()).trim();
  assert.ok(secret.length >= 20, 'a secret is shown');
  await check(page, 'application-secret');
  await page.goto(WARD + appPath);
  assert.equal(await page.locator('#secret').count(), 0, 'the secret is not shown again');
  await page.goto(WARD + '/console/applications?q=portal');
  assert.equal(await page.locator('#applications tbody tr').count(), 1);
  await check(page, 'applications');
});

test('users: invite through the application, list and filter, the profile link', async () => {
  const { page } = admin;
  await page.getByRole('link', { name: 'Users' }).click();
  await page.waitForURL(/\/console\/users$/);
  await check(page, 'users-empty');
  await page.getByRole('link', { name: 'Invite a user' }).click();
  await check(page, 'user-invite');
  await page.selectOption('#app', { label: 'Patient portal' });
  await page.fill('#email', 'patient@example.org');
  await page.fill('#name', 'Pat Example');
  await page.getByLabel(env('WARD_ROLE')).check();
  await page.getByRole('button', { name: 'Invite' }).click();
  await page.getByText('Invitation created').waitFor();
  assert.match(await page.locator('#invitation').textContent(), /\/user-invite\/\S+$/);
  await page.goto(WARD + '/console/users?q=pat');
  assert.deepEqual(await page.locator('#users tbody td:first-child').allTextContents(), ['Pat Example']);
  await check(page, 'users');
  await page.getByRole('link', { name: 'Pat Example' }).click();
  await page.waitForURL(/\/console\/users\/[^/]+$/);
  userPath = new URL(page.url()).pathname;
  await check(page, 'user');
  // A password reset link, shown once.
  await page.getByRole('button', { name: 'Make a password reset link' }).click();
  assert.match(await page.locator('#reset-link').textContent(), /\/oauth\/reset\/\S+$/);
  await check(page, 'user-reset-link');
  await page.goto(WARD + userPath);
  assert.equal(await page.locator('#reset-link').count(), 0);
  // The profile Ward created for the invitation, in the FHIR pages.
  await page.locator('#profile-link').click();
  await page.waitForURL(/\/console\/fhir\/Patient\/[^/]+$/);
  assert.match(await page.locator('#resource-json').textContent(), /"text": "Pat Example"/);
});

test('a resource\'s JSON is highlighted', async () => {
  const { page } = admin;
  await page.goto(WARD + '/console/fhir/Patient/' + env('WARD_PATIENT'));
  const json = page.locator('#resource-json');
  const parsed = JSON.parse(await json.textContent());
  assert.equal(parsed.id, env('WARD_PATIENT'));
  assert.ok(await json.locator('.j-key').count() >= 5, 'keys marked');
  assert.deepEqual(await json.locator('.j-lit').allTextContents(), ['true']);
  assert.ok((await json.locator('.j-str').allTextContents()).includes('"1990-01-02"'));
  // Coloured by the stylesheet, not inline (the CSP allows no inline style).
  const colors = await json.evaluate((el) => [...new Set([...el.querySelectorAll('span')].map((s) => getComputedStyle(s).color))]);
  assert.ok(colors.length >= 3, `distinct colours: ${colors}`);
  await check(page, 'fhir-json');
});

test('exports: start one, follow it to done, download a file; cancel another', async () => {
  const { page } = admin;
  await page.getByRole('link', { name: 'Exports' }).click();
  await page.waitForURL(/\/console\/exports$/);
  await check(page, 'exports-empty');
  // A bad _since: the API's message at the field.
  await page.fill('#since', 'yesterday');
  await page.getByRole('button', { name: 'Start export' }).click();
  await page.locator('#since[aria-invalid="true"]').waitFor();
  await page.fill('#since', '');
  await page.getByLabel('Every patient\'s compartment (Patient level)').check();
  await page.fill('#types', 'Patient');
  await page.getByRole('button', { name: 'Start export' }).click();
  await page.waitForURL(/\/console\/exports\/[0-9a-f-]{36}$/);
  const jobPath = new URL(page.url()).pathname;
  // exports.js polls while it runs and reloads the page when it is done.
  await page.locator('#export-status', { hasText: 'done' }).waitFor({ timeout: 30000 });
  assert.ok(await page.locator('#manifest .j-key').count() > 0, 'the manifest is highlighted');
  await check(page, 'export-done');
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-files a').first().click()]);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  const lines = Buffer.concat(chunks).toString().trim().split('\n');
  assert.ok(lines.length >= 6, `${lines.length} lines`); // five Patients and the invited user's
  for (const l of lines) assert.equal(JSON.parse(l).resourceType, 'Patient');
  assert.match(download.suggestedFilename(), /\.ndjson$/);

  // Another, cancelled (running or done, the button ends it).
  await page.goto(WARD + '/console/exports');
  await page.getByLabel('Everything you may search (system level)').check();
  await page.fill('#types', 'Patient,Observation');
  await page.getByRole('button', { name: 'Start export' }).click();
  await page.waitForURL(/\/console\/exports\/[0-9a-f-]{36}$/);
  const cancelled = new URL(page.url()).pathname;
  await check(page, 'export');
  await page.getByRole('button', { name: /^(Cancel|Delete) export$/ }).click();
  await page.waitForURL(/\/console\/exports\?done=/);
  assert.match(await page.locator('[role="status"]').first().textContent(), /cancelled/);
  assert.equal(await page.locator(`a[href="${cancelled}"]`).count(), 0);
  assert.equal(await page.locator(`a[href="${jobPath}"]`).count(), 1);
  await check(page, 'exports');
  const gone = await page.request.get(WARD + cancelled);
  assert.equal(gone.status(), 404);
  assert.deepEqual(admin.errors, []);
  assert.deepEqual([...admin.hosts], [new URL(WARD).host]);
});

test('a read-only developer sees no write controls and a forced POST is 403', async () => {
  const { page, errors, hosts } = await signIn(env('WARD_READER_EMAIL'));
  await page.goto(WARD + '/console/developers');
  assert.equal(await page.getByRole('link', { name: 'Invite a developer' }).count(), 0);
  await check(page, 'reader-developers');
  await page.goto(WARD + developerPath);
  assert.equal(await page.getByRole('button', { name: 'Save roles' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Remove developer' }).count(), 0);
  await check(page, 'reader-developer');
  await page.goto(WARD + '/console/users');
  assert.equal(await page.getByRole('link', { name: 'Invite a user' }).count(), 0);
  await page.goto(WARD + userPath);
  assert.equal(await page.getByRole('button', { name: 'Remove user' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Make a password reset link' }).count(), 0);
  await check(page, 'reader-user');
  await page.goto(WARD + appPath);
  assert.equal(await page.locator('form[method="post"] button').filter({ hasNotText: 'Sign out' }).count(), 0);
  await check(page, 'reader-application');
  const csrf = await csrfOf(page);
  for (const [path, form, action] of [
    ['/console/developers/invite', { email: 'forced@example.org' }, 'IAM:InviteDeveloper'],
    [developerPath + '/remove', {}, 'IAM:RemoveDeveloper'],
    ['/console/users/invite', { email: 'forced@example.org' }, 'App:CreateUser'],
    [userPath + '/roles', {}, 'App:UpdateUser'],
    [userPath + '/reset-password-link', {}, 'App:GetUserPasswordResetLink'],
    ['/console/applications/new', { name: 'forced', callbacks: '' }, 'App:CreateApplication'],
    [appPath + '/rotate-secret', {}, 'App:RotateApplicationSecret'],
    [appPath + '/delete', {}, 'App:DeleteApplication'],
  ]) {
    const res = await page.request.post(WARD + path, { form: { csrf, ...form }, maxRedirects: 0 });
    assert.equal(res.status(), 403, path);
    assert.match(await res.text(), new RegExp(action), path);
  }
  // No CSRF token: 403 too.
  const res = await page.request.post(WARD + '/console/applications/new', { form: { name: 'x' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  assert.deepEqual(errors, []);
  assert.deepEqual([...hosts], [new URL(WARD).host]);
});
