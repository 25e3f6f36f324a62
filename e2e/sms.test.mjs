// Transactional SMS end to end: the published @oystehr/sdk's transactionalSMS.send and
// messaging.getMessagingConfig against a real `ward serve` (started by e2e/sms_test.go), through
// the local provider and then through Twilio (a loopback stand-in in the Go test that checks each
// request and posts signed status callbacks, as Twilio does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, base, token, sdk, rejects, until, m2mToken } from './sdklib.mjs';

const admin = sdk(await token(env('WARD_CLIENT_ID'), env('WARD_CLIENT_SECRET')));
const adminB = sdk(await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET')));
const twilioURL = env('TWILIO_URL');

const patient = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Text' }],
  telecom: [{ system: 'phone', use: 'home', value: '+15550000000' }, { system: 'phone', use: 'mobile', value: '+1 (555) 123-4567' }] });
const practitioner = await admin.fhir.create({ resourceType: 'Practitioner', telecom: [{ system: 'sms', value: '+447700900123' }] });
const landline = await admin.fhir.create({ resourceType: 'Patient', telecom: [{ system: 'phone', use: 'home', value: '+15550000001' }] });
const unlucky = await admin.fhir.create({ resourceType: 'Patient', telecom: [{ system: 'phone', use: 'mobile', value: '+15559999999' }] });
const words = Array.from({ length: 70 }, (_, i) => `word${i}`).join(' '); // 409 characters: 3 parts


// A client holding only the rules given.
const clientWith = async (name, rule) => sdk(await m2mToken(admin, name, rule));

test('local provider: every send is a completed Communication', async () => {
  assert.deepEqual(await admin.messaging.getMessagingConfig(), { transactionalSMSConfig: { provider: 'local', configured: true } });
  const { resourceId } = await admin.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: 'Your appointment is tomorrow at 9.' });
  const c = await admin.fhir.get({ resourceType: 'Communication', id: resourceId });
  assert.equal(c.status, 'completed');
  assert.deepEqual(c.recipient, [{ reference: `Patient/${patient.id}` }]);
  assert.deepEqual(c.payload, [{ contentString: 'Your appointment is tomorrow at 9.' }]);
  assert.equal(c.medium[0].coding[0].code, 'SMSWRIT');
  // A long message is one Communication holding the whole text.
  const long = await admin.transactionalSMS.send({ resource: `Practitioner/${practitioner.id}`, message: words });
  const lc = await admin.fhir.get({ resourceType: 'Communication', id: long.resourceId });
  assert.equal(lc.payload[0].contentString, words);
  assert.equal(lc.status, 'completed');
  // Found in the record.
  const found = (await admin.fhir.search({ resourceType: 'Communication', params: [{ name: 'recipient', value: `Patient/${patient.id}` }] })).unbundle();
  assert.ok(found.some((r) => r.id === resourceId));
});

test('bad input is a clear 4xx', async () => {
  await rejects(admin.transactionalSMS.send({ resource: `Patient/${landline.id}`, message: 'hi' }), 400, /no mobile number/);
  await rejects(admin.transactionalSMS.send({ resource: `Observation/${patient.id}`, message: 'hi' }), 400, /Patient\/<id>/);
  await rejects(admin.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: '  ' }), 400, /empty/);
  await rejects(admin.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: 'x'.repeat(1601) }), 400, /limit is 1600/);
  await rejects(admin.transactionalSMS.send({ resource: 'Patient/no-such-patient', message: 'hi' }), 404);
});

test('authorization: the seed\'s actions, the recipient readable, projects apart', async () => {
  const none = await clientWith('sms-none', [{ resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' }]);
  await rejects(none.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: 'hi' }), 403, /Messaging:SendTransactionalSMS on Messaging:TransactionalSMS/);
  await rejects(none.messaging.getMessagingConfig(), 403, /Messaging:GetConfiguration/);
  const blind = await clientWith('sms-blind', [
    { resource: 'Messaging:TransactionalSMS', action: ['Messaging:SendTransactionalSMS'], effect: 'Allow' },
    { resource: 'FHIR:Communication:*', action: ['FHIR:Create'], effect: 'Allow' },
  ]);
  await assert.rejects(blind.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: 'hi' }), (e) => e.code === 403 || e.code === 404);
  const sender = await clientWith('sms-sender', [
    { resource: 'Messaging:TransactionalSMS', action: ['Messaging:SendTransactionalSMS'], effect: 'Allow' },
    { resource: 'Messaging:Messaging', action: ['Messaging:GetConfiguration'], effect: 'Allow' },
    { resource: 'FHIR:Patient:*', action: ['FHIR:Read'], effect: 'Allow' },
    { resource: 'FHIR:Communication:*', action: ['FHIR:Create'], effect: 'Allow' },
  ]);
  const { resourceId } = await sender.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: 'from a role' });
  assert.ok(resourceId);
  assert.equal((await sender.messaging.getMessagingConfig()).transactionalSMSConfig.provider, 'local');
  // Another project's patient does not exist for project B.
  await rejects(adminB.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: 'hi' }), 404);
});

test('project settings: providers are validated', async () => {
  await rejects(admin.project.update({ providers: { sms: 'carrier-pigeon' } }), 400, /no provider "carrier-pigeon"/);
  await rejects(admin.project.update({ providers: { pager: 'local' } }), 400, /no service "pager"/);
  assert.deepEqual((await admin.project.get()).providers, {});
});

test('twilio provider: split parts, retries, signed callbacks, forged ones refused', async () => {
  const p = await admin.project.update({ providers: { sms: 'twilio' } });
  assert.deepEqual(p.providers, { sms: 'twilio' });
  assert.deepEqual((await adminB.project.get()).providers, {}, 'project B keeps its own choice');
  // Chosen but without credentials: reported, and sending says what is missing.
  assert.deepEqual(await admin.messaging.getMessagingConfig(), { transactionalSMSConfig: { provider: 'twilio', configured: false } });
  await rejects(admin.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: 'hi' }), 400, /TWILIO_ACCOUNT_SID/);
  await admin.secret.set({ name: 'TWILIO_ACCOUNT_SID', value: env('TWILIO_ACCOUNT') });
  await admin.secret.set({ name: 'TWILIO_AUTH_TOKEN', value: env('TWILIO_TOKEN') });
  await admin.secret.set({ name: 'TWILIO_FROM_NUMBER', value: env('TWILIO_FROM') });
  assert.deepEqual(await admin.messaging.getMessagingConfig(),
    { transactionalSMSConfig: { provider: 'twilio', configured: true, phoneNumber: env('TWILIO_FROM') } });

  const { resourceId } = await admin.transactionalSMS.send({ resource: `Patient/${patient.id}`, message: words });
  const sent = await (await fetch(`${twilioURL}/_sent`)).json();
  assert.equal(sent.length, 3, 'three parts (the stand-in answered the first try 503: Ward retried)');
  assert.ok(sent.every((m) => m.to === '+15551234567' && m.body.length <= 160));
  assert.equal(sent.map((m) => m.body).join(' '), words);
  // The stand-in's signed "delivered" callbacks complete the Communication.
  const done = await until('completed', async () => {
    const c = await admin.fhir.get({ resourceType: 'Communication', id: resourceId });
    return c.status === 'completed' && c;
  });
  assert.deepEqual(done.identifier.map((i) => i.value).sort(), sent.map((m) => m.sid).sort());
  assert.deepEqual(done.meta.tag, [{ system: 'urn:ward:sms', code: 'twilio' }]);

  // An undelivered part fails it, with Twilio's reason.
  const bad = await admin.transactionalSMS.send({ resource: `Patient/${unlucky.id}`, message: 'hi' });
  // (R4's Communication.status has no "failed": not-done, with statusReason.)
  const failed = await until('not-done', async () => {
    const c = await admin.fhir.get({ resourceType: 'Communication', id: bad.resourceId });
    return c.status === 'not-done' && c;
  });
  assert.match(failed.statusReason.text, /undelivered \(error 30003\)/);

  // Forged callbacks: wrong signature, none, another project's URL; nothing changes.
  const me = await admin.project.get();
  const cb = `${base}/v1/messaging/transactional-sms/status/${me.id}/${bad.resourceId}`;
  const form = new URLSearchParams({ MessageSid: 'SM1', MessageStatus: 'delivered' });
  for (const [url, headers] of [
    [cb, { 'x-twilio-signature': 'RSOYDt4T1cUTdK1PDd93/VVr8B8=' }],
    [cb, {}],
    [`${base}/v1/messaging/transactional-sms/status/not-a-project/${bad.resourceId}`, { 'x-twilio-signature': 'x' }],
  ]) {
    const res = await fetch(url, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
    assert.equal(res.status, 403, `${url}: ${await res.text()}`);
  }
  assert.equal((await admin.fhir.get({ resourceType: 'Communication', id: bad.resourceId })).status, 'not-done');

  // Back to local: null removes the choice.
  assert.deepEqual((await admin.project.update({ providers: { sms: null } })).providers, {});
});
