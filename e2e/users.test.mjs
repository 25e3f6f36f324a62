// Users and applications end to end: the published @oystehr/sdk drives a
// real `ward serve`. The Go test in this folder (users_test.go) starts the
// server and passes its URL and two projects' admin credentials.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base, env, foreignRequests, rejects, sdk, token } from './sdklib.mjs';


const admin = sdk(await token(env('WARD_A_CLIENT_ID'), env('WARD_A_CLIENT_SECRET')));
const adminB = sdk(await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET')));
const suffix = Math.random().toString(36).slice(2, 8);

const appKeys = [
  'id', 'name', 'clientId', 'allowedCallbackUrls', 'allowedLogoutUrls', 'allowedWebOriginsUrls', 'allowedCORSOriginsUrls',
  'refreshTokenEnabled', 'mfaEnabled', 'passwordlessSMS', 'loginWithEmailEnabled', 'shouldSendInviteEmail',
];

test('applications: create, list, get, update, rotate the secret, delete', async () => {
  const app = await admin.application.create({
    name: `portal-${suffix}`,
    description: 'patient portal',
    allowedCallbackUrls: ['https://portal.example.com/callback', 'http://localhost:3000/callback'],
    allowedWebOriginsUrls: ['https://portal.example.com'],
    refreshTokenEnabled: true,
  });
  for (const k of appKeys) assert.ok(k in app, `application lacks ${k}: ${JSON.stringify(app)}`);
  assert.equal(app.name, `portal-${suffix}`);
  assert.equal(app.description, 'patient portal');
  assert.deepEqual(app.allowedCallbackUrls, ['https://portal.example.com/callback', 'http://localhost:3000/callback']);
  assert.equal(app.refreshTokenEnabled, true);
  assert.equal(app.mfaEnabled, false);
  assert.equal(app.secret, undefined);
  assert.ok(app.clientId.length >= 16);

  const list = await admin.application.list();
  const item = list.find((a) => a.id === app.id);
  assert.deepEqual(item, { id: app.id, name: app.name, clientId: app.clientId, description: 'patient portal' });

  assert.deepEqual(await admin.application.get({ id: app.id }), app);
  const up = await admin.application.update({ id: app.id, name: `portal2-${suffix}`, allowedLogoutUrls: ['https://portal.example.com/bye'] });
  assert.equal(up.name, `portal2-${suffix}`);
  assert.deepEqual(up.allowedLogoutUrls, ['https://portal.example.com/bye']);
  assert.deepEqual(up.allowedCallbackUrls, app.allowedCallbackUrls);

  const { secret } = await admin.application.rotateSecret({ id: app.id });
  assert.ok(secret.length >= 32);
  const { secret: again } = await admin.application.rotateSecret({ id: app.id });
  assert.notEqual(again, secret);
  await rejects(admin.application.revokeRefreshToken({ id: app.id }), 400, /token is required/);

  await rejects(admin.application.create({ name: 'x', allowedCallbackUrls: ['http://portal.example.com/cb'] }), 400, /https/);
  await rejects(admin.application.create({ name: 'x', allowedCallbackUrls: ['https://portal.example.com/cb#frag'] }), 400, /fragment/);
  await rejects(adminB.application.get({ id: app.id }), 404);

  await admin.application.delete({ id: app.id });
  await rejects(admin.application.get({ id: app.id }), 404);
});

test('users: invite, accept the link, list, listV2, get, update, delete', async () => {
  const app = await admin.application.create({ name: `users-app-${suffix}`, allowedCallbackUrls: ['https://portal.example.com/callback'] });
  const role = await admin.role.create({
    name: `patient-${suffix}`,
    accessPolicy: { rule: [{ resource: 'FHIR:Patient:*', action: 'FHIR:Read', effect: 'Allow' }] },
  });
  const resource = { resourceType: 'Patient', name: [{ given: ['Ada'], family: 'Lovelace' }] };
  const patient = await admin.fhir.create(resource);
  const invited = [];
  for (const who of ['ada', 'bob', 'cy']) {
    const u = await admin.user.invite({
      applicationId: app.id,
      email: `${who}-${suffix}@Example.org`,
      resource,
      profile: `Patient/${patient.id}`,
      roles: [role.id],
    });
    invited.push(u);
  }
  const [ada] = invited;
  assert.equal(ada.email, `ada-${suffix}@example.org`);
  assert.equal(ada.name, 'Ada Lovelace');
  assert.equal(ada.phoneNumber, null);
  assert.equal(ada.authenticationMethod, 'email');
  assert.equal(ada.profile, `Patient/${patient.id}`);
  assert.deepEqual(ada.roles, [{ id: role.id, name: role.name }]);
  assert.match(ada.invitationUrl, new RegExp(`^${base}/user-invite/`));

  // The invitation link: a plain page, then the password is set once.
  const page = await fetch(ada.invitationUrl);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<form method="post">/);
  assert.doesNotMatch(html, /<script/);
  const accept = (password) =>
    fetch(ada.invitationUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
  assert.equal((await accept('short')).status, 400);
  const accepted = await accept('correct horse battery staple');
  assert.equal(accepted.status, 200);
  assert.equal((await accepted.json()).id, ada.id);
  assert.equal((await accept('correct horse battery staple')).status, 404);

  await rejects(
    admin.user.invite({ applicationId: app.id, email: `ADA-${suffix}@example.org`, resource, profile: `Patient/${patient.id}`, roles: [role.id] }),
    409,
  );
  await rejects(admin.user.invite({ applicationId: app.id, email: `dan-${suffix}@example.org`, resource, profile: `Patient/${patient.id}` }), 400, /roles or an accessPolicy/);

  const list = await admin.user.list();
  const item = list.find((u) => u.id === ada.id);
  assert.deepEqual(item, { id: ada.id, name: 'Ada Lovelace', email: ada.email, profile: ada.profile });

  const seen = [];
  let cursor;
  for (let i = 0; i < 10; i++) {
    const pageV2 = await admin.user.listV2({ email: suffix, sort: 'email', sortOrder: 'desc', limit: 2, cursor });
    for (const d of pageV2.data) {
      assert.deepEqual(Object.keys(d).sort(), ['email', 'id', 'name', 'profile']);
      seen.push(d.email);
    }
    cursor = pageV2.metadata.nextCursor ?? undefined;
    if (!cursor) break;
  }
  assert.deepEqual(seen, ['cy', 'bob', 'ada'].map((w) => `${w}-${suffix}@example.org`));

  const got = await admin.user.get({ id: ada.id });
  const { invitationUrl, ...shape } = ada;
  assert.deepEqual(got, shape);

  const policy = { rule: [{ resource: 'FHIR:Observation:*', action: 'FHIR:Read', effect: 'Allow' }] };
  const up = await admin.user.update({ id: ada.id, roles: [], accessPolicy: policy, email: `lovelace-${suffix}@example.org` });
  assert.deepEqual(up.roles, []);
  assert.deepEqual(up.accessPolicy, policy);
  assert.equal(up.email, `lovelace-${suffix}@example.org`);

  // A role a user holds cannot be deleted; its holders are named.
  await rejects(admin.role.delete({ roleId: role.id }), 409, new RegExp(invited[1].id));

  await rejects(adminB.user.get({ id: ada.id }), 404);
  await rejects(admin.user.me(), 403);

  for (const u of invited) await admin.user.delete({ id: u.id });
  await rejects(admin.user.get({ id: ada.id }), 404);
  await admin.role.delete({ roleId: role.id });
  await admin.application.delete({ id: app.id });
});

test('a client without the App actions gets 403 naming the action', async () => {
  const role = await admin.role.create({
    name: `no-app-${suffix}`,
    accessPolicy: { rule: [{ resource: 'IAM:Role:*', action: 'IAM:ListAllRoles', effect: 'Allow' }] },
  });
  const client = await admin.m2m.create({ name: `no-app-${suffix}`, roles: [role.id] });
  const { secret } = await admin.m2m.rotateSecret({ id: client.id });
  const ro = sdk(await token(client.clientId, secret));
  const app = await admin.application.create({ name: `guarded-${suffix}`, allowedCallbackUrls: [] });

  await rejects(ro.application.list(), 403, /App:ListAllApplications on App:Application:\*/);
  await rejects(ro.application.create({ name: 'x', allowedCallbackUrls: [] }), 403, /App:CreateApplication/);
  await rejects(ro.application.get({ id: app.id }), 403, new RegExp(`App:GetApplication on App:Application:${app.id}`));
  await rejects(ro.application.update({ id: app.id, name: 'y' }), 403, /App:UpdateApplication/);
  await rejects(ro.application.rotateSecret({ id: app.id }), 403, /App:RotateApplicationSecret/);
  await rejects(ro.application.delete({ id: app.id }), 403, /App:DeleteApplication/);
  await rejects(ro.user.list(), 403, /App:ListAllUsers on App:User:\*/);
  await rejects(ro.user.listV2({}), 403, /App:ListAllUsers/);
  await rejects(
    ro.user.invite({ applicationId: app.id, email: `x-${suffix}@example.org`, resource: { resourceType: 'Patient' }, roles: [role.id] }),
    403,
    /App:CreateUser on App:User:\*/,
  );
  await rejects(ro.user.get({ id: 'someone' }), 403, /App:GetUser on App:User:someone/);
  await rejects(ro.user.update({ id: 'someone', roles: [] }), 403, /App:UpdateUser/);
  await rejects(ro.user.delete({ id: 'someone' }), 403, /App:DeleteUser/);
  await rejects(ro.user.resetMfa({ id: 'someone' }), 403, /App:ResetUserMFA on App:User:someone/);
  await rejects(ro.user.resetPasswordLink({ id: 'someone', redirectUrl: 'https://portal.example.com/callback' }), 403, /App:GetUserPasswordResetLink/);
  // The listing still works for what the role does allow.
  assert.ok((await ro.role.list()).some((r) => r.id === role.id));

  await admin.m2m.delete({ id: client.id });
  await admin.role.delete({ roleId: role.id });
  await admin.application.delete({ id: app.id });
});

test('users: resetPasswordLink (the page, once) and resetMfa, across projects', async () => {
  const cb = 'https://portal.example.com/callback';
  const app = await admin.application.create({ name: `reset-app-${suffix}`, allowedCallbackUrls: [cb] });
  const role = await admin.role.create({ name: `reset-role-${suffix}`, accessPolicy: { rule: [] } });
  const user = await admin.user.invite({ applicationId: app.id, email: `reset-${suffix}@example.org`, profile: 'Patient/reset', roles: [role.id] });

  const first = await admin.user.resetPasswordLink({ id: user.id, redirectUrl: cb });
  const { link, expiresAt } = await admin.user.resetPasswordLink({ id: user.id, redirectUrl: cb });
  assert.ok(link.startsWith(`${base}/oauth/reset/`), link);
  assert.ok(Date.parse(expiresAt) > Date.now() + 23 * 3600e3, expiresAt);
  assert.equal((await fetch(first.link)).status, 404, 'a newer link replaces the older');
  await rejects(admin.user.resetPasswordLink({ id: user.id, redirectUrl: 'https://evil.example/' }), 400, /redirectUrl/);
  await rejects(adminB.user.resetPasswordLink({ id: user.id, redirectUrl: cb }), 404);
  await rejects(adminB.user.resetMfa({ id: user.id }), 404);

  // Follow the link as a browser does: the page sets a cookie its form needs.
  const page = await fetch(link);
  assert.equal(page.status, 200);
  const cookie = page.headers.get('set-cookie').split(';')[0];
  const form = (await page.text()).match(/name="form" value="([^"]+)"/)[1];
  const post = (headers) => fetch(link, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ form, password: 'a fresh long password' }) });
  assert.equal((await post({})).status, 403, 'no cookie: CSRF refused');
  const done = await post({ cookie });
  assert.equal(done.status, 200);
  assert.match(await done.text(), /Your password is changed/);
  assert.equal((await fetch(link)).status, 404, 'the link works once');

  assert.equal(await admin.user.resetMfa({ id: user.id }), null);
  await admin.user.delete({ id: user.id });
  await rejects(admin.user.resetMfa({ id: user.id }), 404);
  await admin.role.delete({ roleId: role.id });
  await admin.application.delete({ id: app.id });
});

test('no SDK request left Ward', () => {
  assert.deepEqual(foreignRequests, []);
});
