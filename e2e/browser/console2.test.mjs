// Ward's web console, second slice, in a real browser: zambdas (create
// with an execution role, upload a zip, invoke it and see its output and
// its log line), secrets (names only), FHIR (a Patient with a validation
// error shown inline, then valid; search; edit; the history diff); a
// read-only developer sees no write controls and forced POSTs are 403; a
// POST without the CSRF token is 403; a subscription's delivery log and
// replay; Z3 upload, download and delete. axe-core on every page (no serious
// or critical violations), no CSP errors, no request to another host, a
// screenshot of each page. Run by TestConsole2 (console2_test.go), which
// sets WARD_URL, WARD_PASSWORD, WARD_ADMIN_EMAIL, WARD_READER_EMAIL and
// WARD_ZIP (a Node zambda's zip) and WARD_SUBSCRIPTION (a Subscription
// id, criteria "Patient", delivering to a webhook that answers 200) and
// WARD_BUCKET (a bucket name to create).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleSuite } from './harness.mjs';

const { env, WARD, check, signIn } = consoleSuite('console2', 'TestConsole2');


const csrfOf = (page) => page.locator('input[name="csrf"]').first().getAttribute('value');

// until polls fn (true when done) with a deadline, for work Ward finishes
// after answering (a zambda's log lines are written after its answer).
async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let admin;
let zambdaPath;
let patientPath;

test('a zambda: create with an execution role, upload its zip, invoke it, find its log line', async () => {
  admin = await signIn(env('WARD_ADMIN_EMAIL'));
  const { page } = admin;
  await page.getByRole('link', { name: 'Zambdas' }).click();
  await page.waitForURL(/\/console\/zambdas$/);
  await check(page, 'zambdas-empty');
  await page.getByRole('link', { name: 'New zambda' }).click();
  await page.waitForURL(/\/console\/zambdas\/new$/);
  await check(page, 'zambda-new');
  // A bad name first: the API's message next to the field.
  await page.fill('#name', 'no spaces allowed');
  await page.getByRole('button', { name: 'Create zambda' }).click();
  await page.locator('#name[aria-invalid="true"]').waitFor();
  assert.match(await page.locator('#problem').textContent(), /name/i);
  await page.fill('#name', 'console-echo');
  await page.selectOption('#runtime', 'nodejs20.x');
  await page.selectOption('#trigger', 'http_auth');
  await page.fill('#memory', '512');
  await page.fill('#timeout', '10');
  await page.selectOption('#role', { label: 'fhir-reader' });
  await page.getByRole('button', { name: 'Create zambda' }).click();
  await page.waitForURL(/\/console\/zambdas\/[^/]+\?saved=1$/);
  zambdaPath = new URL(page.url()).pathname;
  assert.match(await page.locator('#zambda-status').textContent(), /Draft/);
  await check(page, 'zambda-draft');

  await page.setInputFiles('#zip', env('WARD_ZIP'));
  await page.getByRole('button', { name: 'Upload zip' }).click();
  await page.waitForURL(/uploaded=1/);
  assert.match(await page.locator('#zambda-status').textContent(), /Active/);
  assert.equal(await page.locator('#role').inputValue() !== '', true);

  await page.fill('#payload', '{"hello": "from the console"}');
  await page.getByRole('button', { name: 'Invoke' }).click();
  await page.locator('#invocation').waitFor();
  const result = await page.locator('#invocation').textContent();
  assert.match(result, /Status 200/);
  assert.match(result, /from the console/);
  assert.match(result, /"hasToken": true/, 'the execution role token reached the event');
  assert.match(result, /in \d+(\.\d+)?m?s/);
  await check(page, 'zambda-invoked');
  // Not JSON: said next to the payload, nothing invoked.
  await page.fill('#payload', '{nope');
  await page.getByRole('button', { name: 'Invoke' }).click();
  await page.locator('#payload[aria-invalid="true"]').waitFor();

  await until('the log line', async () => {
    await page.goto(WARD + zambdaPath + '?logs=' + encodeURIComponent('console-probe'));
    const lines = await page.locator('#log-lines').textContent();
    return lines.includes('console-probe line') && lines.includes('from the console');
  });
  await check(page, 'zambda-logs');
  // Follow: a new invocation's line appears without a reload.
  await page.getByRole('button', { name: 'Follow new lines' }).click();
  assert.equal(await page.locator('#log-follow').getAttribute('aria-pressed'), 'true');
  const res = await page.request.post(WARD + zambdaPath + '/invoke', { form: { csrf: await csrfOf(page), payload: '{"followed": "yes"}' } });
  assert.equal(res.status(), 200);
  await page.locator('#log-lines', { hasText: 'followed' }).waitFor({ timeout: 15000 });
  await check(page, 'zambda-follow');
  await page.getByRole('button', { name: 'Stop following' }).click();
});

test('secrets: set, names only, delete', async () => {
  const { page } = admin;
  await page.getByRole('link', { name: 'Secrets' }).click();
  await page.waitForURL(/\/console\/secrets$/);
  await check(page, 'secrets-empty');
  for (const name of ['KEPT', 'GONE']) {
    await page.fill('#secret-name', name);
    await page.fill('#secret-value', 'value-of-' + name);
    await page.getByRole('button', { name: 'Save secret' }).click();
    await page.getByText(`Secret ${name} saved.`).waitFor();
  }
  const html = await page.content();
  assert.ok(!html.includes('value-of-'), 'a secret value is on the page');
  await page.fill('#secret-name', 'bad name');
  await page.fill('#secret-value', 'x');
  await page.getByRole('button', { name: 'Save secret' }).click();
  await page.locator('#secret-name[aria-invalid="true"]').waitFor();
  await check(page, 'secrets');
  await page.getByRole('button', { name: 'Delete secret GONE' }).click();
  await page.getByText('Secret GONE deleted.').waitFor();
  assert.deepEqual(await page.locator('table.list td.scope').allTextContents(), ['KEPT']);
});

test('FHIR: a Patient with a validation error, then valid; search; edit; history diff', async () => {
  const { page } = admin;
  await page.getByRole('link', { name: 'FHIR' }).click();
  await page.waitForURL(/\/console\/fhir$/);
  await check(page, 'fhir-types');
  await page.getByRole('link', { name: 'Patient', exact: true }).click();
  await page.waitForURL(/\/console\/fhir\/Patient$/);
  await check(page, 'fhir-patients-empty');
  await page.getByRole('link', { name: 'New Patient' }).click();
  await page.waitForURL(/\/console\/fhir\/Patient\/new$/);
  await check(page, 'fhir-new');
  await page.fill('#resource', '{"resourceType": "Patient", "gender": "robot", "name": [{"family": "Console", "given": ["Ada"]}]}');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.locator('#problem').waitFor();
  assert.match(await page.locator('#problem').textContent(), /Patient\.gender/);
  assert.equal(await page.locator('#resource').getAttribute('aria-invalid'), 'true');
  await check(page, 'fhir-new-invalid');
  await page.fill('#resource', '{"resourceType": "Patient", "gender": "female", "name": [{"family": "Console", "given": ["Ada"]}]}');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/\/console\/fhir\/Patient\/[^/]+\?saved=1$/);
  patientPath = new URL(page.url()).pathname;
  const id = patientPath.split('/').pop();
  assert.match(await page.locator('#resource-json').textContent(), /"family": "Console"/);
  await check(page, 'fhir-patient');

  await page.goto(WARD + '/console/fhir/Patient');
  await page.fill('#q', 'family=console&gender=female');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/q=/);
  assert.deepEqual(await page.locator('#results tbody td:first-child').allTextContents(), [id]);
  await check(page, 'fhir-search');
  await page.fill('#q', 'nosuchparameter=1');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.locator('#q[aria-invalid="true"]').waitFor();

  await page.goto(WARD + patientPath);
  const edited = JSON.parse(await page.locator('#resource').inputValue());
  edited.name[0].family = 'Lovelace';
  await page.fill('#resource', JSON.stringify(edited, null, 2));
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved as version 2.').waitFor();
  await page.getByRole('link', { name: 'History' }).click();
  await page.waitForURL(/_history$/);
  const diff = page.locator('#diff');
  assert.match(await diff.locator('.del').allTextContents().then((l) => l.join('\n')), /"family": "Console"/);
  assert.match(await diff.locator('.add').allTextContents().then((l) => l.join('\n')), /"family": "Lovelace"/);
  await check(page, 'fhir-history');
  assert.deepEqual(admin.errors, []);
  assert.deepEqual([...admin.hosts], [new URL(WARD).host]);
});

test('a subscription: its deliveries with HTTP status, replayed', async () => {
  const { page } = admin;
  const subPath = '/console/subscriptions/' + env('WARD_SUBSCRIPTION');
  await page.getByRole('link', { name: 'Subscriptions' }).click();
  await page.waitForURL(/\/console\/subscriptions$/);
  await check(page, 'subscriptions');
  await page.locator(`a[href="${subPath}"]`).click();
  await page.waitForURL(new RegExp(subPath + '$'));
  // The Patient's create and update, each delivered (HTTP 200).
  const delivered = async () => (await page.locator('#deliveries').textContent()).match(/HTTP 200/g)?.length ?? 0;
  await until('two deliveries', async () => {
    await page.reload();
    return (await delivered()) >= 2;
  });
  await check(page, 'subscription');
  const first = (await page.locator('#deliveries tbody tr td:first-child').allTextContents()).map(Number).sort((a, b) => a - b)[0];
  // A bad event number: the API's message next to the field.
  await page.fill('#from', 'soon');
  await page.getByRole('button', { name: 'Replay' }).click();
  await page.locator('#from[aria-invalid="true"]').waitFor();
  await page.fill('#from', String(first));
  await page.getByRole('button', { name: 'Replay' }).click();
  await page.waitForURL(/requeued=/);
  assert.match(await page.locator('[role="status"]').first().textContent(), /Requeued [1-9]\d* deliveries/);
  await until('the replayed delivery', async () => {
    await page.reload();
    return (await delivered()) >= 3;
  });
});

test('Z3: a bucket, upload into a folder, download the same bytes, delete', async () => {
  const { page } = admin;
  const bucket = env('WARD_BUCKET');
  await page.getByRole('link', { name: 'Z3' }).click();
  await page.waitForURL(/\/console\/z3$/);
  await check(page, 'z3-empty');
  await page.fill('#bucket-name', bucket);
  await page.getByRole('button', { name: 'Create bucket' }).click();
  await page.getByText(`Bucket ${bucket} created.`).waitFor();
  await check(page, 'z3-buckets');
  await page.goto(WARD + `/console/z3/${bucket}/reports/`);
  await page.setInputFiles('#file', { name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from the console\n') });
  await page.getByRole('button', { name: 'Upload file' }).click();
  await page.getByText('Uploaded.').waitFor();
  await check(page, 'z3-folder');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'hello.txt' }).click()]);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  assert.equal(Buffer.concat(chunks).toString(), 'hello from the console\n');
  assert.equal(download.suggestedFilename(), 'hello.txt');
  // A second file to leave for the reader; then delete the first.
  await page.setInputFiles('#file', { name: 'kept.txt', mimeType: 'text/plain', buffer: Buffer.from('kept') });
  await page.getByRole('button', { name: 'Upload file' }).click();
  await page.getByText('Uploaded.').waitFor();
  await page.getByRole('button', { name: 'Delete hello.txt' }).click();
  await page.getByText('Deleted reports/hello.txt.').waitFor();
  assert.deepEqual(await page.locator('#objects tbody td:first-child').allTextContents(), ['kept.txt']);
});

test('a POST without the session CSRF token is 403 and invokes nothing', async () => {
  const { page } = admin;
  const res = await page.request.post(WARD + zambdaPath + '/invoke', { form: { payload: '{}' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  const res2 = await page.request.post(WARD + '/console/secrets', { form: { csrf: 'forged', name: 'X', value: 'y' }, maxRedirects: 0 });
  assert.equal(res2.status(), 403);
});

test('a read-only developer sees no write controls and a forced POST is 403', async () => {
  const { page, errors, hosts } = await signIn(env('WARD_READER_EMAIL'));
  await page.goto(WARD + '/console/zambdas');
  assert.equal(await page.getByRole('link', { name: 'New zambda' }).count(), 0);
  await check(page, 'reader-zambdas');
  await page.goto(WARD + zambdaPath);
  for (const name of ['Save settings', 'Upload zip', 'Invoke']) {
    assert.equal(await page.getByRole('button', { name }).count(), 0, name);
  }
  assert.equal(await page.getByRole('button', { name: 'Search logs' }).count(), 1);
  await check(page, 'reader-zambda');
  await page.goto(WARD + '/console/secrets');
  assert.equal(await page.getByRole('button', { name: 'Save secret' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: /Delete/ }).count(), 0);
  await check(page, 'reader-secrets');
  await page.goto(WARD + '/console/fhir/Patient');
  assert.equal(await page.getByRole('link', { name: 'New Patient' }).count(), 0);
  await check(page, 'reader-patients');
  await page.goto(WARD + patientPath);
  assert.equal(await page.locator('textarea').count(), 0);
  await check(page, 'reader-patient');

  const subPath = '/console/subscriptions/' + env('WARD_SUBSCRIPTION');
  await page.goto(WARD + subPath);
  assert.equal(await page.getByRole('button', { name: 'Replay' }).count(), 0);
  await check(page, 'reader-subscription');

  const bucket = env('WARD_BUCKET');
  await page.goto(WARD + `/console/z3/${bucket}/reports/`);
  assert.equal(await page.getByRole('button', { name: 'Upload file' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: /Delete/ }).count(), 0);
  await page.getByRole('link', { name: 'kept.txt' }).waitFor();
  await check(page, 'reader-z3-folder');
  await page.goto(WARD + '/console/z3');
  assert.equal(await page.getByRole('button', { name: 'Create bucket' }).count(), 0);
  await check(page, 'reader-z3');

  const csrf = await csrfOf(page);
  const upload = await page.request.post(WARD + `/console/z3-upload/${bucket}/reports/`, { multipart: {
    csrf, file: { name: 'forced.txt', mimeType: 'text/plain', buffer: Buffer.from('x') } }, maxRedirects: 0 });
  assert.equal(upload.status(), 403);
  for (const [path, form] of [
    ['/console/z3', { name: bucket + '-forced' }],
    [`/console/z3/${bucket}/delete-bucket`, {}],
    [`/console/z3-delete/${bucket}/reports/kept.txt`, {}],
    [subPath + '/replay', {}],
    [subPath + '/resume', {}],
    ['/console/zambdas/new', { name: 'forced', runtime: 'nodejs20.x', triggerMethod: 'http_auth' }],
    [zambdaPath, { name: 'forced', runtime: 'nodejs20.x', triggerMethod: 'http_auth' }],
    [zambdaPath + '/invoke', { payload: '{}' }],
    ['/console/secrets', { name: 'FORCED', value: 'x' }],
    ['/console/secrets/KEPT/delete', {}],
    ['/console/fhir/Patient/new', { resource: '{"resourceType":"Patient"}' }],
    [patientPath, { version: '2', resource: '{"resourceType":"Patient","id":"' + patientPath.split('/').pop() + '"}' }],
  ]) {
    const res = await page.request.post(WARD + path, { form: { csrf, ...form }, maxRedirects: 0 });
    assert.equal(res.status(), 403, path);
  }
  assert.deepEqual(errors, []);
  assert.deepEqual([...hosts], [new URL(WARD).host]);
});
