// Fax end to end: the published @oystehr/sdk's fax.onboard, offboard, getConfiguration and send
// against a real `ward serve` (started by e2e/fax_test.go), through the local provider and then
// Phaxio (a loopback stand-in in the Go test that checks each request as Phaxio documents it).
// Every send is a FHIR Communication holding the document and the delivery status.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, base, token, sdk, rejects, adminCredentials, sdkFromCredentials, foreignRequests, services, until, m2mToken } from './sdklib.mjs';

const creds = adminCredentials();
const admin = sdkFromCredentials(creds, await token(creds.clientId, creds.clientSecret));
const adminB = sdk(await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET')));
const phaxioURL = env('PHAXIO_URL');

after(() => assert.deepEqual(foreignRequests, [], 'the SDK called a host other than Ward'));

const pdf = '%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n';
await admin.z3.createBucket({ bucketName: 'faxes' });
await admin.z3.uploadFile({ bucketName: 'faxes', 'objectPath+': 'referrals/referral.pdf', file: new Blob([pdf], { type: 'application/pdf' }) });
await admin.z3.createBucket({ bucketName: 'secret-reports' });
await admin.z3.uploadFile({ bucketName: 'secret-reports', 'objectPath+': 'r.pdf', file: new Blob([pdf]) });
const media = `${services.projectApiUrl}/z3/faxes/referrals/referral.pdf`;

const patient = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Fax' }] });
const doctor = await admin.fhir.create({ resourceType: 'Practitioner', telecom: [{ system: 'fax', value: '+1 (217) 555-0142' }] });
const nofax = await admin.fhir.create({ resourceType: 'Practitioner', telecom: [{ system: 'phone', value: '+12175550143' }] });
const docRef = await admin.fhir.create({ resourceType: 'DocumentReference', status: 'current',
  content: [{ attachment: { url: media, contentType: 'application/pdf', title: 'referral.pdf' } }] });
let clinic = await admin.fhir.create({ resourceType: 'Organization', name: 'Clinic' });

// The clinic sends from the project's number.
async function clinicFaxes(number) {
  clinic = await admin.fhir.update({ ...clinic, telecom: [{ system: 'fax', value: number }] });
}


// A client holding only the rules given.
const clientWith = async (name, rule) => sdk(await m2mToken(admin, name, rule));

const send = (client, extra) => client.fax.send({ media, quality: 'fine', sender: `Organization/${clinic.id}`, recipient: `Practitioner/${doctor.id}`, ...extra });

test('local provider: onboard, send (recorded as sent), offboard', async () => {
  assert.deepEqual(await admin.fax.getConfiguration(), { configured: false, faxNumbers: [], provider: 'local' });
  await rejects(send(admin), 400, /no fax number: fax.onboard first/);
  const { faxNumber } = await admin.fax.onboard();
  assert.match(faxNumber, /^\+1555\d{7}$/);
  assert.deepEqual(await admin.fax.onboard(), { faxNumber }, 'one number per project: onboarding again gives it back');
  assert.deepEqual(await admin.fax.getConfiguration(), { configured: true, faxNumbers: [faxNumber], provider: 'local' });
  await clinicFaxes(faxNumber);

  const { communicationResource: c } = await send(admin, { patient: `Patient/${patient.id}` });
  assert.equal(c.resourceType, 'Communication');
  assert.equal(c.status, 'completed');
  assert.deepEqual(c.recipient, [{ reference: `Practitioner/${doctor.id}` }]);
  assert.deepEqual(c.sender, { reference: `Organization/${clinic.id}` });
  assert.deepEqual(c.subject, { reference: `Patient/${patient.id}` });
  assert.equal(c.medium[0].coding[0].code, 'FAXWRIT');
  assert.deepEqual(c.payload, [{ contentAttachment: { url: media, title: 'referral.pdf', size: pdf.length, contentType: 'application/pdf' } }]);
  assert.deepEqual(c.extension.find((e) => e.url === 'https://extensions.fhir.oystehr.com/outbound-fax-status'),
    { url: 'https://extensions.fhir.oystehr.com/outbound-fax-status', valueString: 'success' });
  assert.deepEqual(await admin.fhir.get({ resourceType: 'Communication', id: c.id }), c, 'the answer is the stored Communication');

  // A bare number: a contained Practitioner holds it.
  const bare = (await admin.fax.send({ media, quality: 'standard', sender: `Organization/${clinic.id}`, recipientNumber: '(217) 555-0199' })).communicationResource;
  assert.deepEqual(bare.contained, [{ resourceType: 'Practitioner', id: 'recipient', telecom: [{ system: 'fax', value: '+12175550199' }] }]);
  assert.deepEqual(bare.recipient, [{ reference: '#recipient' }]);
  // A DocumentReference whose attachment is in Z3.
  const viaDoc = (await send(admin, { media: `DocumentReference/${docRef.id}`, quality: 'superfine' })).communicationResource;
  assert.deepEqual(viaDoc.payload, [{ contentReference: { reference: `DocumentReference/${docRef.id}` } }]);

  await admin.fax.offboard();
  assert.deepEqual(await admin.fax.getConfiguration(), { configured: false, faxNumbers: [], provider: 'local' });
  await admin.fax.offboard(); // nothing to release: no error
});

test('bad input is a clear 400 or 404', async () => {
  const { faxNumber } = await admin.fax.onboard();
  await clinicFaxes(faxNumber);
  const cases = [
    [{ recipientNumber: '+12175550199' }, 400, /one of recipient or recipientNumber, not both/],
    [{ recipient: undefined }, 400, /one of recipient or recipientNumber/],
    [{ quality: 'ultra' }, 400, /quality must be standard, fine or superfine/],
    [{ recipient: `Practitioner/${nofax.id}` }, 400, /has no telecom with system fax/],
    [{ recipient: `Observation/${doctor.id}` }, 400, /recipient must be a reference/],
    [{ sender: `Practitioner/${doctor.id}` }, 400, /holding the project's fax number/],
    [{ recipient: undefined, recipientNumber: 'call me' }, 400, /recipientNumber/],
    [{ media: 'https://evil.example/x.pdf' }, 400, /Z3 URL of this server/],
    [{ media: `${services.projectApiUrl}/z3/faxes/../secret-reports/r.pdf` }, 400],
    [{ media: `${services.projectApiUrl}/z3/faxes/referrals/` }, 400, /folder/],
    [{ media: `${services.projectApiUrl}/z3/faxes/nope.pdf` }, 404],
    [{ media: 'DocumentReference/no-such-doc' }, 404],
    [{ patient: 'Patient/no-such-patient' }, 404],
    [{ recipient: 'Practitioner/no-such-doctor' }, 404],
    [{ media: '' }, 400, /media is required/],
  ];
  for (const [extra, code, msg] of cases) await rejects(send(admin, extra), code, msg);
  const res = await fetch(`${services.faxApiUrl}/send`, { method: 'POST', body: '[1,2', headers: {
    authorization: `Bearer ${await token(creds.clientId, creds.clientSecret)}`, 'content-type': 'application/json' } });
  assert.equal(res.status, 400);
});

test('authorization: Fax:* actions, the FHIR and Z3 rights it uses, projects apart', async () => {
  const fhirOnly = await clientWith('fax-none', [{ resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' }, { resource: 'Z3:*', action: ['Z3:*'], effect: 'Allow' }]);
  await rejects(fhirOnly.fax.onboard(), 403, /Fax:Onboard on Fax:Number/);
  await rejects(fhirOnly.fax.offboard(), 403, /Fax:Offboard on Fax:Number/);
  await rejects(fhirOnly.fax.getConfiguration(), 403, /Fax:GetConfiguration on Fax:Configuration/);
  await rejects(send(fhirOnly), 403, /Fax:Send on Fax:Fax/);
  // Allowed to send, but not to read the document in Z3.
  const noZ3 = await clientWith('fax-no-z3', [{ resource: 'Fax:*', action: ['Fax:*'], effect: 'Allow' }, { resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' },
    { resource: 'Z3:faxes/**', action: ['Z3:GetObject'], effect: 'Deny' }]);
  await rejects(send(noZ3), 403, /Z3:GetObject on Z3:faxes\/referrals\/referral.pdf/);
  const sender = await clientWith('fax-sender', [{ resource: 'Fax:*', action: ['Fax:*'], effect: 'Allow' }, { resource: 'FHIR:*', action: ['FHIR:Read', 'FHIR:Create'], effect: 'Allow' },
    { resource: 'Z3:faxes/**', action: ['Z3:GetObject'], effect: 'Allow' }]);
  assert.equal((await send(sender)).communicationResource.status, 'completed');
  await rejects(send(sender, { media: `${services.projectApiUrl}/z3/secret-reports/r.pdf` }), 403, /Z3:GetObject/);

  // Project B: its own number; project A's resources and documents are not there.
  assert.deepEqual((await adminB.fax.getConfiguration()).faxNumbers, []);
  await rejects(send(adminB), 400, /no fax number/);
  await adminB.fax.onboard();
  await rejects(send(adminB), 404);
  await adminB.fax.offboard();
  assert.equal((await admin.fax.getConfiguration()).configured, true, 'B offboarding left A alone');
  await admin.fax.offboard();
});

test('phaxio provider: numbers provisioned and released, the document uploaded, failures recorded', async () => {
  assert.deepEqual((await admin.project.update({ providers: { fax: 'phaxio' } })).providers, { fax: 'phaxio' });
  assert.deepEqual(await admin.fax.getConfiguration(), { configured: false, faxNumbers: [], provider: 'phaxio' });
  await rejects(admin.fax.onboard(), 400, /PHAXIO_API_KEY/);
  await admin.secret.set({ name: 'PHAXIO_API_KEY', value: env('PHAXIO_KEY') });
  await admin.secret.set({ name: 'PHAXIO_API_SECRET', value: env('PHAXIO_SECRET') });
  await admin.secret.set({ name: 'PHAXIO_AREA_CODE', value: '847' });
  await admin.secret.set({ name: 'PHAXIO_CALLBACK_TOKEN', value: env('PHAXIO_CALLBACK_TOKEN') });
  const { faxNumber } = await admin.fax.onboard();
  assert.equal(faxNumber, env('PHAXIO_NUMBER'));
  assert.deepEqual(await admin.fax.getConfiguration(), { configured: true, faxNumbers: [faxNumber], provider: 'phaxio' });
  await clinicFaxes(faxNumber);

  const { communicationResource: c } = await send(admin, { patient: `Patient/${patient.id}` });
  assert.equal(c.status, 'in-progress', 'queued at Phaxio: not delivered yet');
  assert.equal(c.extension.find((e) => e.url.endsWith('outbound-fax-status')).valueString, 'queued');
  assert.deepEqual(c.meta.tag, [{ system: 'urn:ward:fax', code: 'phaxio' }]);
  const log = await (await fetch(`${phaxioURL}/_log`)).json();
  assert.deepEqual(log[0], { method: 'POST', path: '/v2.1/phone_numbers', country_code: '1', area_code: '847' });
  const sent = log.find((e) => e.path === '/v2.1/faxes');
  assert.deepEqual(sent, { method: 'POST', path: '/v2.1/faxes', to: '+12175550142', caller_id: faxNumber, file: pdf, 'file.filename': 'referral.pdf', id: sent.id });
  assert.deepEqual(c.identifier, [{ system: 'urn:ward:fax:id', value: sent.id }], 'Phaxio\'s fax id is on the record');
  // Phaxio's signed callback (the stand-in's) completes it.
  const done = await until('completed', async () => {
    const got = await admin.fhir.get({ resourceType: 'Communication', id: c.id });
    return got.status === 'completed' && got;
  });
  assert.equal(done.extension.find((e) => e.url.endsWith('outbound-fax-status')).valueString, 'success');
  // Forged callbacks: a wrong signature, none, another project's URL; nothing changes.
  const me = await admin.project.get();
  const pending = (await send(admin)).communicationResource;
  const form = () => { const f = new FormData(); f.set('success', 'false'); f.set('fax', `{"id":${pending.identifier[0].value},"status":"failure"}`); return f; };
  for (const [url, headers] of [
    [`${base}/fax/v1/phaxio/callback/${me.id}/${c.id}`, { 'x-phaxio-signature': '0'.repeat(40) }],
    [`${base}/fax/v1/phaxio/callback/${me.id}/${c.id}`, {}],
    [`${base}/fax/v1/phaxio/callback/not-a-project/${c.id}`, { 'x-phaxio-signature': 'x' }],
  ]) {
    const res = await fetch(url, { method: 'POST', body: form(), headers });
    assert.equal(res.status, 403, `${url}: ${await res.text()}`);
  }
  assert.equal((await admin.fhir.get({ resourceType: 'Communication', id: c.id })).status, 'completed');

  // Phaxio refuses a number: a 400 with its message, the Communication not-done.
  const err = await send(admin, { recipient: undefined, recipientNumber: '+15559999999' }).catch((e) => e);
  assert.equal(err.code, 400);
  assert.match(err.message, /Phone number is not formatted correctly/);
  const failedID = /Communication\/([\w.-]+)/.exec(err.message)[1];
  const failed = await admin.fhir.get({ resourceType: 'Communication', id: failedID });
  assert.equal(failed.status, 'not-done');
  assert.match(failed.statusReason.text, /phaxio status 422/);
  assert.equal(failed.extension.find((e) => e.url.endsWith('outbound-fax-status')).valueString, 'failure');

  // Wrong credentials are Phaxio's refusal, said as such.
  await admin.secret.set({ name: 'PHAXIO_API_SECRET', value: 'wrong' });
  await rejects(send(admin), 400, /Invalid API credentials/);
  await admin.secret.set({ name: 'PHAXIO_API_SECRET', value: env('PHAXIO_SECRET') });

  await admin.fax.offboard();
  const after = await (await fetch(`${phaxioURL}/_log`)).json();
  assert.deepEqual(after.at(-1), { method: 'DELETE', path: `/v2.1/phone_numbers/${faxNumber}` });
  assert.deepEqual((await admin.fax.getConfiguration()).faxNumbers, []);
  assert.deepEqual((await admin.project.update({ providers: { fax: null } })).providers, {});
});
