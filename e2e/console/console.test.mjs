// End-to-end tests of tokend's web console in a real browser: Debian's
// Chromium, headless, driven by Playwright (playwright-core, which never
// downloads a browser). The tests build tokend, start it on a free port
// with a new SQLite file, and walk through what an administrator does,
// from the first-run setup link in the server's log to signing out. Any
// console error, uncaught page error or Content-Security-Policy violation
// in the browser fails the run. Screenshots of each page go to
// screenshots/ (not committed).
//
// Run: npm ci && node --test --test-concurrency=1 console.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const shots = join(here, 'screenshots');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

let work, server, serverLog = '', base, setupURL;
let browser, context, page;
const problems = []; // console errors, page errors, CSP violations
// HTTP error statuses that steps expect the browser to report (a refused
// sign-in, a refused form), each once: Chromium logs them a moment later.
const expectedStatuses = [];

const adminPass = 'correct horse battery staple';
const state = {}; // what one step leaves for the next

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitFor(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; server log:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// watch reports what goes wrong in a page: console errors (Chromium logs
// CSP violations there too), uncaught errors, and the securitypolicyviolation
// events that the init script turns into console errors.
function watch(p) {
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    const st = /Failed to load resource: the server responded with a status of (\d+)/.exec(text);
    if (st && expectedStatuses.includes(Number(st[1]))) {
      expectedStatuses.splice(expectedStatuses.indexOf(Number(st[1])), 1);
      return;
    }
    problems.push(`console error on ${p.url()}: ${text}`);
  });
  p.on('pageerror', (e) => problems.push(`page error on ${p.url()}: ${e.message}`));
  p.on('dialog', (d) => d.accept()); // the confirmations of destructive actions
}

async function newContext(opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  return ctx;
}

async function shot(name, p = page) {
  await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

// expectHTTP runs fn, which leads the browser to an answer with each of
// the given HTTP error statuses (a refused sign-in, a refused form).
async function expectHTTP(statuses, fn) {
  expectedStatuses.push(...statuses);
  return await fn();
}

// Every visible form field has a label.
async function assertLabelled(p = page) {
  const bare = await p.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
      .map((el) => el.name || el.id));
  assert.deepEqual(bare, [], `fields without a label on ${p.url()}`);
}

async function go(path) {
  await page.goto(base + path);
  await assertLabelled();
}

async function flash() {
  return (await page.locator('.flash').textContent()).trim();
}

// The OAuth endpoints, over plain HTTP from the test.
async function tokenRequest(form, user, pass) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (user) headers.authorization = 'Basic ' + Buffer.from(`${encodeURIComponent(user)}:${encodeURIComponent(pass)}`).toString('base64');
  const r = await fetch(base + '/oauth2/token', { method: 'POST', headers, body: new URLSearchParams(form) });
  return { status: r.status, body: await r.json() };
}

async function introspect(token) {
  const r = await fetch(base + '/oauth2/introspect', {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${state.clientID}:${state.secret}`).toString('base64'),
    },
    body: new URLSearchParams({ token }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).active;
}

// createUserInConsole fills the New user form.
async function createUserInConsole(username, password, roles) {
  await go('/console/users/new');
  await page.fill('#f-username', username);
  await page.fill('#f-password', password);
  await page.fill('#f-roles', roles);
  await page.click('button:has-text("Create user")');
  await page.waitForURL(/\/console\/users\/[^/?]+\?done=user-created/);
  return new URL(page.url()).pathname.split('/').pop();
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'tokend-console-e2e-'));
  const bin = join(work, 'tokend');
  execFileSync('go', ['build', '-o', bin, './cmd/tokend'], { cwd: repo, stdio: 'inherit' });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ['serve', '--addr', `127.0.0.1:${port}`, '--db', `sqlite:${join(work, 'tokend.db')}`,
    '--lockout-threshold', '3', '--argon2-memory', '19456', '--argon2-time', '2', '--argon2-threads', '1'],
  { env: { ...process.env, TOKEND_DIALECTS: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr.on('data', (d) => { serverLog += d.toString(); });
  await waitFor('tokend to listen', () => serverLog.includes('tokend listening'));
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
  context = await newContext();
  page = await context.newPage();
  watch(page);
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
  if (work) rmSync(work, { recursive: true, force: true });
  assert.deepEqual(problems, [], 'the browser reported problems');
});

test('first-run setup from the link in the log', async () => {
  const m = /setup_url="?([^"\s]+)/.exec(serverLog);
  assert.ok(m, `no setup link in the log:\n${serverLog}`);
  setupURL = m[1];
  assert.ok(setupURL.startsWith(base + '/console/setup?token='), setupURL);
  await page.goto(setupURL);
  await assertLabelled();
  await shot('setup');
  await page.fill('#f-username', 'root');
  await page.fill('#f-password', adminPass);
  await page.fill('#f-password2', adminPass + ' typo');
  await expectHTTP([400], () => page.click('button:has-text("Create administrator")'));
  assert.match(await page.locator('#f-password2-err').textContent(), /The two passwords differ/);
  await page.fill('#f-password', adminPass);
  await page.fill('#f-password2', adminPass);
  await page.click('button:has-text("Create administrator")');
  await page.waitForURL(base + '/console/?done=welcome');
  assert.match(await flash(), /first administrator/);
  // The link works once.
  const other = await newContext();
  const p2 = await other.newPage();
  watch(p2);
  await expectHTTP([404], () => p2.goto(setupURL));
  assert.match(await p2.locator('.alert').textContent(), /setup link is not valid/);
  await other.close();
});

test('sign-out ends the sign-in on the server: the old cookie is refused', async () => {
  const cookies = await context.cookies();
  assert.ok(cookies.some((c) => c.name === 'tokend_console' && c.httpOnly && c.sameSite === 'Strict'), JSON.stringify(cookies));
  await page.click('button:has-text("Sign out")');
  await page.waitForURL(/\/console\/signin\?m=signedout/);
  assert.match(await flash(), /You are signed out/);
  await shot('signin');
  const thief = await newContext();
  await thief.addCookies(cookies);
  const p2 = await thief.newPage();
  watch(p2);
  await p2.goto(base + '/console/users');
  assert.match(p2.url(), /\/console\/signin\?/);
  assert.match(await p2.locator('.flash').textContent(), /session has ended/);
  await thief.close();
});

test('sign-in, by keyboard alone', async () => {
  await go('/console/signin');
  await page.keyboard.press('Tab'); // the skip link
  await page.focus('#f-username');
  await page.keyboard.type('root');
  await page.keyboard.press('Tab');
  await page.keyboard.type(adminPass);
  await page.keyboard.press('Enter');
  await page.waitForURL(base + '/console/');
  assert.equal(await page.locator('h1').textContent(), 'Overview');
});

test('a wrong password, then the lockout message', async () => {
  await createUserInConsole('bob', 'bob-password', 'tokend.admin');
  const ctx = await newContext();
  const p2 = await ctx.newPage();
  watch(p2);
  await p2.goto(base + '/console/signin');
  for (let i = 0; i < 3; i++) {
    await p2.fill('#f-username', 'bob');
    await p2.fill('#f-password', 'wrong password');
    await expectHTTP([401], () => p2.click('button:has-text("Sign in")'));
    assert.match(await p2.locator('.alert').textContent(), /Wrong username or password/);
  }
  await p2.fill('#f-username', 'bob');
  await p2.fill('#f-password', 'bob-password');
  await expectHTTP([429], () => p2.click('button:has-text("Sign in")'));
  assert.match(await p2.locator('.alert').textContent(), /Too many failed sign-ins.*Try again in/s);
  await shot('signin-locked', p2);
  await ctx.close();
});

test('a confidential client: its secret shown once, copied, and good for a token', async () => {
  await go('/console/clients/new');
  await page.fill('#f-name', 'billing');
  assert.ok(await page.isChecked('input[name=grants][value=client_credentials]'));
  await page.fill('#f-scopes', 'invoices.read');
  await page.click('button:has-text("Create client app")');
  await page.waitForSelector('text=you will not see it again');
  state.clientID = (await page.locator('#client-id').textContent()).trim();
  const shown = await page.inputValue('#secret');
  await page.click('button:has-text("Copy")');
  await page.waitForSelector('.copied:has-text("Copied.")');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, shown);
  state.secret = copied;
  await shot('client-secret');
  const r = await tokenRequest({ grant_type: 'client_credentials' }, state.clientID, state.secret);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.scope, 'invoices.read');
  // The client's page never shows the secret again.
  await go(`/console/clients/${state.clientID}`);
  assert.ok(!(await page.content()).includes(state.secret));
});

test('rotating the secret: the old one fails, the new one works', async () => {
  await go(`/console/clients/${state.clientID}`);
  await shot('client');
  await page.click('button:has-text("Rotate secret")'); // confirmed in the dialog
  await page.waitForSelector('text=you will not see it again');
  const fresh = await page.inputValue('#secret');
  assert.notEqual(fresh, state.secret);
  const old = await tokenRequest({ grant_type: 'client_credentials' }, state.clientID, state.secret);
  assert.equal(old.status, 401);
  state.secret = fresh;
  const r = await tokenRequest({ grant_type: 'client_credentials' }, state.clientID, state.secret);
  assert.equal(r.status, 200);
});

test('disabling a user: its access token introspects inactive', async () => {
  // A public client for users' logins, made in the console too.
  await go('/console/clients/new');
  await page.fill('#f-name', 'web');
  await page.check('#f-public');
  await page.uncheck('input[name=grants][value=client_credentials]');
  await page.check('input[name=grants][value=password]');
  await page.check('input[name=grants][value=refresh_token]');
  await page.click('button:has-text("Create client app")');
  await page.waitForSelector('text=it has no secret');
  state.web = (await page.locator('#client-id').textContent()).trim();

  const alice = await createUserInConsole('alice', 'alice-password', 'reader');
  const login = await tokenRequest({ grant_type: 'password', client_id: state.web, username: 'alice', password: 'alice-password' });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  assert.equal(await introspect(login.body.access_token), true);
  await go(`/console/users/${alice}`);
  await page.click('button:has-text("Disable user")'); // confirmed in the dialog
  await page.waitForURL(/done=user-disabled/);
  assert.match(await flash(), /disabled/);
  assert.equal(await introspect(login.body.access_token), false);
});

test('revoking a session', async () => {
  const carol = await createUserInConsole('carol', 'carol-password', 'reader');
  const login = await tokenRequest({ grant_type: 'password', client_id: state.web, username: 'carol', password: 'carol-password' });
  assert.equal(login.status, 200);
  await go(`/console/users/${carol}`);
  assert.equal(await page.locator('button:has-text("Revoke")').count(), 1);
  await shot('user');
  await page.click('button:has-text("Revoke")'); // confirmed in the dialog
  await page.waitForURL(/done=session-revoked/);
  assert.equal(await page.locator('button:has-text("Revoke")').count(), 0);
  assert.equal(await introspect(login.body.access_token), false);
  assert.equal(await introspect(login.body.refresh_token), false);
});

test('without the script, a destructive action asks on a confirmation page', async () => {
  const ctx = await newContext({ javaScriptEnabled: false });
  const p2 = await ctx.newPage();
  watch(p2);
  await p2.goto(base + '/console/signin');
  await p2.fill('#f-username', 'root');
  await p2.fill('#f-password', adminPass);
  await p2.click('button:has-text("Sign in")');
  await p2.waitForURL(base + '/console/');
  await p2.goto(base + `/console/clients/${state.web}`);
  await p2.click('button:has-text("Disable client app")');
  await p2.waitForSelector('h1:has-text("Please confirm")');
  await shot('confirm', p2);
  await p2.click('a:has-text("Cancel")');
  await p2.waitForURL(base + `/console/clients/${state.web}`);
  assert.equal(await p2.locator('button:has-text("Disable client app")').count(), 1, 'cancelled, the client is still enabled');
  await ctx.close();
});

test('rotating a key', async () => {
  await go('/console/keys');
  const before = await page.locator('tbody tr').count();
  await page.selectOption('#f-alg', 'ES256');
  await page.click('button:has-text("Rotate key")'); // confirmed in the dialog
  await page.waitForURL(/done=key-rotated/);
  assert.equal(await page.locator('tbody tr').count(), before + 1);
  const kid = (await page.locator('tbody tr:last-child code').textContent()).trim();
  const jwks = await (await fetch(base + '/.well-known/jwks.json')).json();
  assert.ok(jwks.keys.some((k) => k.kid === kid), `the new key ${kid} is not in the JWKS`);
  await shot('keys');
});

test('CSRF: a form posted without its token is refused', async () => {
  await go('/console/');
  await expectHTTP([403], () => Promise.all([
    page.waitForNavigation(),
    page.evaluate(() => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = '/console/users';
      const i = document.createElement('input');
      i.name = 'username';
      i.value = 'forged';
      f.appendChild(i);
      document.body.appendChild(f);
      f.submit();
    }),
  ]));
  assert.match(await page.locator('.alert').textContent(), /security token/);
  await go('/console/users?q=forged');
  assert.match(await page.locator('tbody').textContent(), /No user whose name starts with/);
});

test('the audit trail lists each action', async () => {
  await go('/console/audit');
  const events = await page.locator('.events .event').allTextContents();
  for (const e of ['user.created', 'client.created', 'client.secret_rotated', 'user.disabled', 'session.revoked', 'key.rotated', 'console.signed_in', 'console.signed_out', 'login.failed', 'account.locked']) {
    assert.ok(events.includes(e), `no ${e} in the audit trail: ${events.join(', ')}`);
  }
  await page.fill('#f-event', 'key.rotated');
  await page.click('button:has-text("Filter")');
  await page.waitForURL(/event=key.rotated/);
  assert.deepEqual([...new Set(await page.locator('.events .event').allTextContents())], ['key.rotated']);
  await page.click('.events summary');
  assert.match(await page.locator('.events details[open]').textContent(), /user:/);
  await shot('audit');
});

test('the watch on the browser sees a CSP violation (so that none passes unseen)', async () => {
  await go('/console/');
  const seen = problems.length;
  await page.evaluate(() => {
    const img = document.createElement('img');
    img.src = 'https://elsewhere.invalid/pixel.png'; // img-src 'self' data: refuses it before any request
    document.body.appendChild(img);
  });
  // Both ways: the securitypolicyviolation event (the init script) and
  // Chromium's own console message.
  await waitFor('the CSP violation to be reported both ways', () => {
    const since = problems.slice(seen);
    return since.some((p) => /CSP violation: img-src/.test(p)) && since.some((p) => /violates the following Content Security Policy directive/.test(p));
  }, 5000);
  problems.splice(seen);
});

test('screenshots of every page, on a laptop and a phone', async () => {
  for (const [name, path] of [['overview', '/console/'], ['users', '/console/users'], ['clients', '/console/clients']]) {
    await go(path);
    await shot(name);
  }
  assert.match(await page.locator('body').textContent(), /billing/);
  await go('/console/');
  assert.match(await page.locator('main').textContent(), /Tokens issued: [1-9]\d* in the last hour/);
  const phone = await newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  await phone.addCookies(await context.cookies());
  const p2 = await phone.newPage();
  watch(p2);
  for (const [name, path] of [['overview-phone', '/console/'], ['users-phone', '/console/users']]) {
    await p2.goto(base + path);
    const overflow = await p2.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${path} scrolls sideways on a phone (${overflow}px)`);
    await shot(name, p2);
  }
  await phone.close();
});
