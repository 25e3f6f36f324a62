// Ward's web console, third slice, in a real browser: the dashboard after
// some API traffic, a Z3 upload by drag and drop, and a session that
// survives a restart of ward serve. Run twice by TestConsole3
// (console3_test.go): WARD_PHASE=before signs in, checks the dashboard,
// drops a file on a folder and downloads it, and saves the browser's
// cookies to WARD_STATE; Go then kills ward serve and starts it again, and
// WARD_PHASE=after opens the console with those cookies: still signed in,
// its forms still accepted. axe-core on every page (no serious or critical
// violations), no CSP errors, no request to another host, screenshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleSuite } from './harness.mjs';

const { env, WARD, open, check } = consoleSuite('console3', 'TestConsole3');
const PHASE = env('WARD_PHASE');
const BUCKET = env('WARD_BUCKET');
const DROPPED = 'dropped notes.txt';
const CONTENT = 'dropped on the folder view\n';

const tile = async (page, label) => {
  const li = page.locator('ul.tiles li', { hasText: label }).first();
  return Number(await li.locator('.figure').textContent());
};

if (PHASE === 'before') {
  test('the dashboard shows the traffic; a dropped file is uploaded and downloads the same', async () => {
    const { context, page, errors, hosts } = await open();
    await page.goto(WARD + '/console/signin');
    await page.waitForURL(/\/oauth\/authorize/);
    await page.fill('#email', env('WARD_ADMIN_EMAIL'));
    await page.fill('#password', env('WARD_PASSWORD'));
    let first;
    page.on('response', (r) => { if (!first && r.url().endsWith('/console/dashboard')) first = r; });
    await page.click('button[value="signin"]');
    await page.waitForURL(/\/console\/dashboard$/);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    assert.ok(await tile(page, 'Requests') >= 6, 'requests counted');
    assert.ok(await tile(page, 'Errors') >= 1, 'the 404 counted');
    // Four charts, each an image with a name and a description.
    const charts = page.locator('svg.chart[role="img"]');
    assert.equal(await charts.count(), 4);
    for (const id of ['requests', 'latency', 'zambdas', 'deliveries']) {
      assert.match(await page.locator(`#${id}-title`).textContent(), /per minute/);
      assert.ok((await page.locator(`#${id}-desc`).textContent()).length > 10);
    }
    assert.ok(await page.locator('#chart-requests g.s1 rect').count() >= 1, 'request bars');
    assert.ok(await page.locator('#chart-requests g.s2 rect').count() >= 1, 'error bars');
    await page.getByText('The figures, minute by minute').click();
    assert.ok(await page.locator('#minutes tbody tr').count() >= 1);
    await check(page, 'dashboard');
    // The first load's size: the page, its stylesheet (no script here).
    const sizes = await page.evaluate(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
      .map((e) => e.transferSize || e.encodedBodySize || 0));
    const total = sizes.reduce((a, b) => a + b, 0);
    console.log(`dashboard first load: ${total} bytes in ${sizes.length} responses`);
    assert.ok(total < 300 * 1024, `first load ${total} bytes`);

    // Drag and drop onto the folder view.
    await page.goto(WARD + `/console/z3/${BUCKET}/inbox/`);
    await page.locator('#dropzone').waitFor({ state: 'visible' });
    await check(page, 'z3-drop-zone');
    const dt = await page.evaluateHandle(({ name, content }) => {
      const d = new DataTransfer();
      d.items.add(new File([content], name, { type: 'text/plain' }));
      return d;
    }, { name: DROPPED, content: CONTENT });
    await page.dispatchEvent('#dropzone', 'dragenter', { dataTransfer: dt });
    await page.dispatchEvent('#dropzone', 'dragover', { dataTransfer: dt });
    assert.match(await page.locator('#dropzone').getAttribute('class'), /over/);
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer: dt });
    await page.waitForURL(/done=Uploaded/);
    await page.getByText('Uploaded 1 file.').waitFor();
    await check(page, 'z3-dropped');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: DROPPED }).click()]);
    const chunks = [];
    for await (const c of await download.createReadStream()) chunks.push(c);
    assert.equal(Buffer.concat(chunks).toString(), CONTENT);

    // A refused drop shows the API's reason next to the file: a name the
    // API refuses (two dots are not a path segment).
    const bad = await page.evaluateHandle(() => {
      const d = new DataTransfer();
      d.items.add(new File(['x'], '..', { type: 'text/plain' }));
      return d;
    });
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer: bad });
    const problem = page.locator('#uploads li .problem');
    await problem.waitFor();
    assert.ok((await problem.textContent()).length > 5, await problem.textContent());
    await check(page, 'z3-drop-refused');

    await context.storageState({ path: env('WARD_STATE') });
    await context.close();
    assert.deepEqual(errors, []);
    assert.deepEqual([...hosts], [new URL(WARD).host]);
  });
}

if (PHASE === 'after') {
  test('after a restart the same browser session is still signed in and its forms pass', async () => {
    const { context, page, errors, hosts } = await open({ storageState: env('WARD_STATE') });
    const res = await page.goto(WARD + '/console/dashboard');
    assert.equal(res.status(), 200);
    assert.match(page.url(), /\/console\/dashboard$/);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await check(page, 'dashboard-after-restart');
    await page.goto(WARD + `/console/z3/${BUCKET}/inbox/`);
    await page.getByRole('link', { name: DROPPED }).waitFor();
    // A form: the CSRF token kept with the session is still checked.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    assert.equal((await context.cookies()).filter((c) => c.name === 'ward_console').length, 0);
    const again = await page.goto(WARD + '/console/dashboard');
    assert.match(again.url(), /\/console$/); // signed out for good
    await context.close();
    assert.deepEqual(errors, []);
    assert.deepEqual([...hosts], [new URL(WARD).host]);
  });
}
