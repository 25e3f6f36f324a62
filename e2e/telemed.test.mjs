// Telemed end to end: the published @oystehr/sdk's telemed.createMeeting and
// joinMeeting against a real `ward serve` on a real livekit-server (started
// by e2e/telemed_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, rejects, sdk, token } from './sdklib.mjs';

const admin = sdk(await token(env('WARD_A_CLIENT_ID'), env('WARD_A_CLIENT_SECRET')));
const virtualService = 'https://extensions.fhir.oystehr.com/encounter-virtual-service-pre-release';

test('createMeeting stores the Encounter with its meeting; joinMeeting answers Meeting, Attendee, url and token', async () => {
  const patient = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Sdk' }] });
  const { encounter } = await admin.telemed.createMeeting({
    encounter: {
      resourceType: 'Encounter', status: 'planned',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR' },
      subject: { reference: `Patient/${patient.id}` },
    },
  });
  assert.ok(encounter.id);
  const ext = encounter.extension.find((e) => e.url === virtualService);
  const room = ext.extension.find((e) => e.url === 'addressString').valueString;
  assert.ok(room.endsWith(`_${encounter.id}`), room);
  const stored = await admin.fhir.get({ resourceType: 'Encounter', id: encounter.id });
  assert.equal(stored.subject.reference, `Patient/${patient.id}`);

  const join = await admin.telemed.joinMeeting({ encounterId: encounter.id });
  assert.equal(join.Meeting.MeetingId, room);
  assert.ok(join.Attendee.AttendeeId);
  assert.equal(join.Attendee.ExternalUserId, join.Attendee.AttendeeId);
  assert.equal(join.url, env('WARD_LIVEKIT_URL'));
  assert.equal(join.token.split('.').length, 3);

  const guest = await admin.telemed.joinMeeting({ encounterId: encounter.id, anonymous: true });
  assert.match(guest.Attendee.AttendeeId, /^anonymous-/);
});

test('bad input gets the SDK error shape', async () => {
  await rejects(admin.telemed.createMeeting({ encounter: { resourceType: 'Patient' } }), 400, /Encounter/);
  await rejects(admin.telemed.joinMeeting({ encounterId: 'no-such-encounter' }), 404, /not known/);
  const plain = await admin.fhir.create({ resourceType: 'Encounter', status: 'planned',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR' } });
  await rejects(admin.telemed.joinMeeting({ encounterId: plain.id }), 404, /no video meeting/);
});
