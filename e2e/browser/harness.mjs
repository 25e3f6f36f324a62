// The browser harness for Ward's end-to-end tests: Debian's chromium driven
// by playwright-core (never a browser Playwright downloads), a loopback
// static server for an application's pages, axe-core checks and
// screenshots. Used by pages.test.mjs and by tests of browser apps
// (fhirclient) against a real `ward serve`.
import { chromium } from 'playwright-core';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// CHROMIUM is the browser binary: Debian's package (apt-get install chromium).
export const CHROMIUM = process.env.WARD_CHROMIUM || '/usr/bin/chromium';

// Flags for a quiet, reproducible browser in a container: no sandbox (the
// tests run as root), no GPU, and nothing that calls out to Google.
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Paths of the npm packages a page may load from the app server.
export const FHIRCLIENT_JS = require.resolve('fhirclient/build/fhir-client.js');
export const AXE_JS = require.resolve('axe-core/axe.min.js');

// launch starts chromium. Playwright gives every launch a fresh, temporary
// user-data-dir (removed on close), so no state leaks between runs; each
// browser.newContext() is a further isolated profile (cookies, storage).
export async function launch(options = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: apt-get install chromium`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000, ...options });
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.map': 'application/json', '.png': 'image/png',
};

// serveStatic serves an application's pages on loopback. files maps URL
// paths to a string (the body) or {file} (a path on disk) or {body, type};
// an unknown path is 404. port 0 picks a free port. Every request is
// recorded in `requests` (method, url) for tests that check what an app did.
export async function serveStatic({ files = {}, port = 0, host = '127.0.0.1', headers = {} } = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    requests.push({ method: req.method, url: req.url });
    let f = files[u.pathname];
    if (f === undefined && u.pathname.endsWith('/')) f = files[u.pathname + 'index.html'];
    if (f === undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    if (typeof f === 'string') f = { body: f, type: TYPES[path.extname(u.pathname)] || TYPES['.html'] };
    const body = f.file ? fs.readFileSync(f.file) : f.body;
    const type = f.type || TYPES[path.extname(f.file || u.pathname)] || 'application/octet-stream';
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers }).end(body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const addr = server.address();
  return {
    url: `http://${host}:${addr.port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

// pkce returns a code_verifier and its S256 code_challenge.
export function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// authorizeURL builds a SMART authorization request to ward.
export function authorizeURL(ward, { clientId, redirectUri, scope, state = 's', challenge, aud = ward + '/fhir' }) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state, aud,
    code_challenge: challenge, code_challenge_method: 'S256',
  });
  return `${ward}/oauth/authorize?${q}`;
}

// axe runs axe-core in the page (through the DevTools protocol, so a
// strict CSP without script-src does not stop it) and returns the
// violations of at least minImpact, each as "id (impact): help: targets".
const IMPACTS = ['minor', 'moderate', 'serious', 'critical'];
export async function axe(page, { minImpact = 'moderate' } = {}) {
  const source = fs.readFileSync(AXE_JS, 'utf8');
  await page.evaluate(source + '\n;undefined');
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    resultTypes: ['violations'],
  }));
  const floor = IMPACTS.indexOf(minImpact);
  return result.violations
    .filter((v) => IMPACTS.indexOf(v.impact) >= floor)
    .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

// screenshotDir is where screenshots go: $WARD_SCREENSHOTS, else a fresh
// temporary directory.
let dir;
export function screenshotDir() {
  if (!dir) {
    dir = process.env.WARD_SCREENSHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'ward-screenshots-'));
    fs.mkdirSync(dir, { recursive: true });
  }
  return dir;
}

// screenshot saves the whole page as <name>.png and prints its path.
export async function screenshot(page, name) {
  const file = path.join(screenshotDir(), name.replace(/[^A-Za-z0-9._-]/g, '_') + '.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
  return file;
}

// watchConsole collects a page's console errors and uncaught exceptions
// (CSP violations show up here). A response's HTTP status is not one: the
// tests check statuses themselves (a wrong password is a 401 page).
export function watchConsole(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource: the server responded with a status of')) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

// consoleSuite is the prologue the console's browser tests share: env reads
// a variable the Go test goTest sets, a browser is launched before the
// file's tests and closed after them, open makes a page that records its
// console errors and every host it requests, check runs axe-core (no
// serious or critical violation) and saves a screenshot named after the
// file, and signIn signs a developer in through /console/signin.
// contextOptions apply to every page the suite opens.
export function consoleSuite(name, goTest, contextOptions = {}) {
  const env = (k) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is not set: run this through go test -run ${goTest}`);
    return v;
  };
  const WARD = env('WARD_URL');
  let browser;
  before(async () => { browser = await launch(); });
  after(async () => { await browser?.close(); });
  async function open(options = {}) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...contextOptions, ...options });
    const page = await context.newPage();
    const errors = watchConsole(page);
    const hosts = new Set();
    page.on('request', (r) => hosts.add(new URL(r.url()).host));
    return { context, page, errors, hosts };
  }
  async function check(page, shot) {
    const violations = await axe(page, { minImpact: 'serious' });
    assert.deepEqual(violations, [], `${shot}: ${violations.join('\n')}`);
    await screenshot(page, name + '-' + shot);
  }
  async function signIn(email, options) {
    const s = await open(options);
    await s.page.goto(WARD + '/console/signin');
    await s.page.waitForURL(/\/oauth\/authorize/);
    await s.page.fill('#email', email);
    await s.page.fill('#password', env('WARD_PASSWORD'));
    await s.page.click('button[value="signin"]');
    await s.page.waitForURL(/\/console\/dashboard$/);
    return s;
  }
  return { env, WARD, open, check, signIn };
}
