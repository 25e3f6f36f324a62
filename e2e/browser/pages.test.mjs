// Ward's sign-in, patient-picker, consent and error pages in a real
// browser, as a patient and a practitioner use them: keyboard flow (Enter
// signs in, never consents), focus after an error, sizes on a phone, axe-core
// (no moderate, serious or critical violations) at 390x844 and 1280x800,
// no CSP violations, and a screenshot of each page.
// Run by TestSMARTPagesAccessible (pages_test.go), which starts ward and sets
// WARD_URL, WARD_CLIENT_ID, WARD_APP_PORT, WARD_PATIENT_EMAIL,
// WARD_PRACTITIONER_EMAIL, WARD_PASSWORD, WARD_PICK and WARD_PICK_MRN (a
// patient's given name and identifier).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, serveStatic, pkce, authorizeURL, axe, screenshot, watchConsole } from './harness.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through go test -run TestSMARTPagesAccessible`);
  return v;
};
const WARD = env('WARD_URL');
const PASSWORD = env('WARD_PASSWORD');
const SCOPE = 'launch/patient openid fhirUser offline_access patient/*.rs';

let browser, app;
before(async () => {
  app = await serveStatic({
    port: Number(env('WARD_APP_PORT')),
    files: { '/callback': '<!doctype html><html lang="en"><title>App</title><main><h1>Back in the app</h1></main></html>' },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await app?.close();
});

// The checks must be able to fail: axe finds the faults of a bad page.
test('axe reports a page without lang, main or labels', async () => {
  const bad = await serveStatic({ files: { '/': '<!doctype html><html><title>x</title><body><input type="text"><div style="color:#999;background:#aaa">faint</div></body></html>' } });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(bad.url + '/');
  const found = (await axe(page)).join('\n');
  for (const id of ['html-has-lang', 'label', 'landmark-one-main', 'color-contrast']) {
    assert.match(found, new RegExp(id), found);
  }
  await context.close();
  await bad.close();
});

const viewports = [{ width: 390, height: 844 }, { width: 1280, height: 800 }];

// open starts a sign-in in a fresh context and returns the page.
async function open(viewport, state) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = watchConsole(page);
  const { challenge } = pkce();
  const url = authorizeURL(WARD, { clientId: env('WARD_CLIENT_ID'), redirectUri: app.url + '/callback', scope: SCOPE, state, challenge });
  const res = await page.goto(url);
  assert.equal(res.status(), 200);
  return { page, context, errors };
}

async function accessible(page, name) {
  await screenshot(page, name);
  const found = await axe(page);
  assert.deepEqual(found, [], `${name}: axe violations`);
  assert.equal(await page.locator('main').count(), 1, `${name}: one <main>`);
  assert.equal(await page.locator('h1').count(), 1, `${name}: one <h1>`);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
}

// box is an element's size and font size.
const box = (page, selector) => page.locator(selector).first().evaluate((el) => {
  const r = el.getBoundingClientRect();
  return { width: r.width, height: r.height, font: parseFloat(getComputedStyle(el).fontSize) };
});

for (const vp of viewports) {
  const size = `${vp.width}x${vp.height}`;

  test(`error page ${size}`, async () => {
    const context = await browser.newContext({ viewport: vp });
    const page = await context.newPage();
    const res = await page.goto(`${WARD}/oauth/authorize?client_id=no-such-app`);
    assert.equal(res.status(), 400);
    assert.match(await page.textContent('main'), /Unknown application/);
    await accessible(page, `error-${size}`);
    await context.close();
  });

  test(`patient: sign in, consent, allow ${size}`, async () => {
    const { page, context, errors } = await open(vp, 'p-' + size);
    assert.match(await page.textContent('main'), new RegExp(`to continue to Pages app at 127\\.0\\.0\\.1:${new URL(app.url).port}`));
    await accessible(page, `signin-${size}`);
    if (vp.width === 390) {
      for (const sel of ['#email', '#password']) {
        const b = await box(page, sel);
        assert.ok(b.width >= 340 && b.height >= 44 && b.font >= 16, `${sel} on a phone: ${JSON.stringify(b)}`);
      }
      for (const sel of ['button[value=signin]', 'button[value=deny]']) {
        const b = await box(page, sel);
        assert.ok(b.height >= 44 && b.width >= 44 && b.font >= 16, `${sel} on a phone: ${JSON.stringify(b)}`);
      }
    }

    // A wrong password: the page comes back with focus in the password
    // field, marked invalid and described by the message.
    await page.fill('#email', env('WARD_PATIENT_EMAIL'));
    await page.fill('#password', 'not the password');
    await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'password');
    assert.equal(await page.getAttribute('#password', 'aria-invalid'), 'true');
    assert.equal(await page.textContent('#' + (await page.getAttribute('#password', 'aria-describedby'))), 'Wrong email or password.');
    await accessible(page, `signin-error-${size}`);

    // Enter signs in and shows the consent page: it never allows.
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
    assert.ok(page.url().startsWith(WARD), `Enter left Ward: ${page.url()}`);
    const text = await page.textContent('main');
    assert.match(await page.textContent('h1'), /^Allow Pages app to access your health records\?$/);
    assert.match(text, /Returns you to\s*127\.0\.0\.1:/);
    assert.match(text, /See all of your health records/);
    assert.match(text, /30 days/);
    assert.equal((text.match(/Know who you are/g) || []).length, 1);
    assert.doesNotMatch(text, /chosen at sign-in/);
    await accessible(page, `consent-${size}`);

    await Promise.all([page.waitForURL(app.url + '/callback?**'), page.click('button[value=allow]')]);
    const back = new URL(page.url());
    assert.ok(back.searchParams.get('code'), page.url());
    assert.equal(back.searchParams.get('state'), 'p-' + size);

    // The signed-in patient's applications: withdrawing forgets the
    // consent, so the next viewport's launch asks again.
    await page.goto(`${WARD}/oauth/apps`);
    assert.match(await page.textContent('main'), /Pages app/);
    await accessible(page, `apps-${size}`);
    await Promise.all([page.waitForNavigation(), page.click('button[value=withdraw]')]);
    assert.match(await page.textContent('main'), /not allowed any application/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test(`practitioner: choose the patient, then consent ${size}`, async () => {
    const { page, context, errors } = await open(vp, 'd-' + size);
    await page.fill('#email', env('WARD_PRACTITIONER_EMAIL'));
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
    assert.equal(await page.textContent('h1'), 'Choose a patient');
    assert.doesNotMatch(await page.textContent('main'), /Patient\//);
    await accessible(page, `picker-${size}`);

    // By identifier, by birth date, then by name.
    for (const [q, n] of [[env('WARD_PICK_MRN'), 1], ['1980-02-03', 2]]) {
      await page.fill('#q', q);
      await Promise.all([page.waitForNavigation(), page.press('#q', 'Enter')]);
      assert.equal(await page.locator('label.choice').count(), n, `search ${q}`);
    }
    await page.fill('#q', env('WARD_PICK'));
    await Promise.all([page.waitForNavigation(), page.press('#q', 'Enter')]);
    const choices = page.locator('label.choice');
    assert.equal(await choices.count(), 1);
    await screenshot(page, `picker-search-${size}`);
    await choices.first().click();
    await Promise.all([page.waitForNavigation(), page.click('button[value=choose]')]);
    assert.match(await page.textContent('h1'), new RegExp(`^Allow Pages app to access ${env('WARD_PICK')} \\w+'s records\\?$`));
    assert.match(await page.textContent('main'), /Born 3 February 1980/);
    await accessible(page, `consent-patient-${size}`);

    await Promise.all([page.waitForURL(app.url + '/callback?**'), page.click('button[value=deny]')]);
    assert.equal(new URL(page.url()).searchParams.get('error'), 'access_denied');
    assert.deepEqual(errors, []);
    await context.close();
  });
}
