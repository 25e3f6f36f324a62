// IAM end to end: the published @oystehr/sdk drives a real `ward serve`.
// The Go test in this folder starts the server and passes its URLs and two
// projects' admin credentials in the environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, rejects, sdk, token } from './sdklib.mjs';


const adminA = sdk(await token(env('WARD_A_CLIENT_ID'), env('WARD_A_CLIENT_SECRET')));
const projectA = env('WARD_A_PROJECT_ID');
const adminBToken = await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET'));
const adminB = sdk(adminBToken);

const suffix = Math.random().toString(36).slice(2, 8);
const secretRole = await adminA.role.create({
  name: `secret-${suffix}`,
  accessPolicy: { rule: [{ resource: 'FHIR:Patient:*', action: 'FHIR:Read', effect: 'Allow' }] },
});
const reader = await adminA.role.create({
  name: `reader-${suffix}`,
  description: 'reads IAM, writes nothing',
  accessPolicy: {
    rule: [
      { resource: ['IAM:Role:*'], action: ['IAM:ListAllRoles', 'IAM:GetRole'], effect: 'Allow' },
      { resource: 'IAM:M2MClient:*', action: 'IAM:GetM2MClient', effect: 'Allow' },
      { resource: `IAM:Role:${secretRole.id}`, action: 'IAM:GetRole', effect: 'Deny' },
    ],
  },
});
const client = await adminA.m2m.create({ name: `reader-client-${suffix}`, roles: [reader.id] });
let secret;

test('an M2M client holding a role gets a token and sees itself', async () => {
  assert.deepEqual(client.roles, [{ id: reader.id, name: reader.name }]);
  assert.equal(client.profile, `Device/${client.id}`);
  ({ secret } = await adminA.m2m.rotateSecret({ id: client.id }));
  assert.ok(secret.length >= 32);
  const me = await sdk(await token(client.clientId, secret)).m2m.me();
  assert.equal(me.id, client.id);
  assert.equal(me.clientId, client.clientId);
  assert.deepEqual(me.roles.map((r) => r.id), [reader.id]);
});

test('rotating the secret again retires the old one', async () => {
  const old = secret;
  ({ secret } = await adminA.m2m.rotateSecret({ id: client.id }));
  await assert.rejects(token(client.clientId, old), (e) => e.status === 401);
  await token(client.clientId, secret);
});

test('a read-only role reads and gets 403 on writes, naming the action', async () => {
  const ro = sdk(await token(client.clientId, secret));
  const roles = await ro.role.list();
  assert.ok(roles.some((r) => r.id === reader.id));
  await rejects(ro.role.create({ name: `nope-${suffix}` }), 403, /IAM:CreateRole on IAM:Role:\*/);
  await rejects(ro.m2m.rotateSecret({ id: client.id }), 403, /IAM:RotateM2MClientSecret/);
});

test('Deny beats Allow', async () => {
  const ro = sdk(await token(client.clientId, secret));
  assert.equal((await ro.role.get({ roleId: reader.id })).id, reader.id);
  await rejects(ro.role.get({ roleId: secretRole.id }), 403, new RegExp(`IAM:GetRole on IAM:Role:${secretRole.id}`));
});

test('updating the role changes the very next request', async () => {
  const ro = sdk(await token(client.clientId, secret));
  await rejects(ro.role.create({ name: `made-by-reader-${suffix}` }), 403);
  const rules = [...reader.accessPolicy.rule, { resource: 'IAM:Role:*', action: 'IAM:CreateRole', effect: 'Allow' }];
  await adminA.role.update({ roleId: reader.id, accessPolicy: { rule: rules } });
  const made = await ro.role.create({ name: `made-by-reader-${suffix}` });
  assert.equal(made.name, `made-by-reader-${suffix}`);
  await adminA.role.update({ roleId: reader.id, accessPolicy: reader.accessPolicy });
  await rejects(ro.role.create({ name: `again-${suffix}` }), 403);
});

test('a held role cannot be deleted; the error names its holders', async () => {
  await rejects(adminA.role.delete({ roleId: reader.id }), 409, new RegExp(client.id));
  const unheld = await adminA.role.create({ name: `unheld-${suffix}` });
  await adminA.role.delete({ roleId: unheld.id });
  await rejects(adminA.role.get({ roleId: unheld.id }), 404);
});

test('policies are validated on write', async () => {
  await rejects(
    adminA.role.create({ name: `bad-${suffix}`, accessPolicy: { rule: [{ resource: 'App:Application:abc', action: 'App:CreateUser', effect: 'Allow' }] } }),
    400,
    /rule\[0\]/,
  );
  await rejects(adminA.role.create({ name: `bad2-${suffix}`, accessPolicy: { rule: [{ resource: '*', action: 'FHIR:Fly', effect: 'Allow' }] } }), 400);
  const ok = await adminA.role.create({
    name: `create-user-${suffix}`,
    accessPolicy: { rule: [{ resource: 'App:Application:*', action: 'App:CreateUser', effect: 'Allow' }] },
  });
  assert.equal(ok.accessPolicy.rule.length, 1);
});

test('one project cannot see or touch another project', async () => {
  const bRoles = await adminB.role.list();
  assert.ok(!bRoles.some((r) => r.id === reader.id), 'project B lists project A roles');
  await rejects(adminB.role.get({ roleId: reader.id }), 404);
  await rejects(adminB.role.update({ roleId: reader.id, name: 'hijack' }), 404);
  await rejects(adminB.role.delete({ roleId: reader.id }), 404);
  await rejects(adminB.m2m.get({ id: client.id }), 404);
  await rejects(adminB.m2m.rotateSecret({ id: client.id }), 404);
  const bClients = await adminB.m2m.list();
  assert.ok(!bClients.some((c) => c.id === client.id));
  // B's token naming A's project in the header is refused outright.
  await rejects(sdk(adminBToken, projectA).role.list(), 403);
  assert.equal((await adminA.role.get({ roleId: reader.id })).name, reader.name);
});

test('m2m listV2 pages with a cursor', async () => {
  for (let i = 0; i < 3; i++) await adminA.m2m.create({ name: `page-${suffix}-${i}`, roles: [reader.id] });
  const seen = [];
  let cursor;
  for (let i = 0; i < 10; i++) {
    const page = await adminA.m2m.listV2({ name: `page-${suffix}`, sort: 'name', limit: 2, cursor });
    seen.push(...page.data.map((d) => d.name));
    cursor = page.metadata.nextCursor ?? undefined;
    if (!cursor) break;
  }
  assert.deepEqual(seen, [0, 1, 2].map((i) => `page-${suffix}-${i}`));
});

test('project get and update, version', async () => {
  const p = await adminA.project.get();
  assert.equal(p.id, projectA);
  const up = await adminA.project.update({ description: `described ${suffix}` });
  assert.equal(up.description, `described ${suffix}`);
  const v = await adminA.version.get();
  assert.equal(v.api, 'project');
});
