// FHIR end to end: the published @oystehr/sdk's FHIR client against a real
// `ward serve` (started by e2e/fhir_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, rejects, sdk, token } from './sdklib.mjs';


const admin = sdk(await token(env('WARD_A_CLIENT_ID'), env('WARD_A_CLIENT_SECRET')));
const tag = `e2e-${Math.random().toString(36).slice(2, 8)}`;

test('create, get, update with versions, patch, history, vread, delete', async () => {
  const p = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Snow', given: ['Jon'] }], birthDate: '1990-02-03', meta: { tag: [{ code: tag }] } });
  assert.ok(p.id);
  assert.equal(p.meta.versionId, '1');
  const got = await admin.fhir.get({ resourceType: 'Patient', id: p.id });
  assert.deepEqual(got.name, p.name);

  const v2 = await admin.fhir.update({ ...got, gender: 'male' }, { optimisticLockingVersionId: '1' });
  assert.equal(v2.meta.versionId, '2');
  await rejects(admin.fhir.update({ ...got, gender: 'female' }, { optimisticLockingVersionId: '1' }), 412);

  const v3 = await admin.fhir.patch({ resourceType: 'Patient', id: p.id, operations: [{ op: 'replace', path: '/gender', value: 'other' }, { op: 'add', path: '/active', value: true }] });
  assert.equal(v3.gender, 'other');
  assert.equal(v3.active, true);
  assert.equal(v3.meta.versionId, '3');
  await rejects(admin.fhir.patch({ resourceType: 'Patient', id: p.id, operations: [{ op: 'replace', path: '/nope', value: 1 }] }), 422);

  const hist = await admin.fhir.history({ resourceType: 'Patient', id: p.id });
  assert.equal(hist.total, 3);
  assert.deepEqual(hist.entry.map((e) => e.resource.meta.versionId), ['3', '2', '1']);
  const page = await admin.fhir.history({ resourceType: 'Patient', id: p.id, count: 1, offset: 1 });
  assert.equal(page.entry.length, 1);
  assert.equal(page.entry[0].resource.meta.versionId, '2');
  const v1 = await admin.fhir.history({ resourceType: 'Patient', id: p.id, versionId: '1' });
  assert.equal(v1.gender, undefined);

  await admin.fhir.delete({ resourceType: 'Patient', id: p.id });
  await rejects(admin.fhir.get({ resourceType: 'Patient', id: p.id }), 410);
  await rejects(admin.fhir.get({ resourceType: 'Patient', id: 'no-such-patient' }), 404);
});

test('invalid resources get an OperationOutcome naming the element', async () => {
  await rejects(admin.fhir.create({ resourceType: 'Patient', birthDate: '1990-13-01' }), 400, /Patient\.birthDate/);
  await rejects(admin.fhir.create({ resourceType: 'Patient', foo: 1 }), 400, /Patient\.foo/);
});

test('empty arrays and objects are dropped, as Oystehr accepts them (Ottehr creates a Group with member: [])', async () => {
  const g = await admin.fhir.create({ resourceType: 'Group', type: 'person', actual: true, name: `G${tag}`, member: [], characteristic: [{}] });
  assert.equal(g.member, undefined);
  const read = await admin.fhir.get({ resourceType: 'Group', id: g.id });
  assert.deepEqual([read.name, read.member, read.characteristic], [`G${tag}`, undefined, undefined]);
  const res = await admin.fhir.batch({
    requests: [{ method: 'PUT', url: `/Group/${g.id}`, resource: { ...read, member: [], meta: undefined } }],
  });
  assert.equal(res.entry[0].response.status, '200');
  assert.equal(res.entry[0].resource.member, undefined);
  await rejects(admin.fhir.create({ resourceType: 'Group', type: 'person', actual: true, name: '' }), 400, /Group\.name/);
});

test('search with several parameters', async () => {
  const mk = (family, birthDate, gender) =>
    admin.fhir.create({ resourceType: 'Patient', name: [{ family }], birthDate, gender, meta: { tag: [{ code: tag }] } });
  const [a] = await Promise.all([mk('Stark', '1980-01-01', 'male'), mk('Stark', '2001-06-15', 'female'), mk('Lannister', '1975-03-03', 'male')]);
  await admin.fhir.create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${a.id}` }, valueQuantity: { value: 72, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' } });
  const s = await admin.fhir.search({ resourceType: 'Patient', params: [{ name: 'family', value: 'stark' }, { name: 'birthdate', value: 'lt2000' }, { name: '_tag', value: tag }] });
  assert.equal(s.total, 1);
  assert.equal(s.unbundle()[0].id, a.id);
  const both = await admin.fhir.search({ resourceType: 'Patient', params: [{ name: 'family', value: 'Stark' }, { name: '_tag', value: tag }, { name: '_sort', value: '-birthdate' }] });
  assert.deepEqual(both.unbundle().map((p) => p.birthDate), ['2001-06-15', '1980-01-01']);
  const obs = await admin.fhir.search({ resourceType: 'Observation', params: [{ name: 'subject', value: `Patient/${a.id}` }, { name: 'code', value: 'http://loinc.org|8867-4' }, { name: 'value-quantity', value: 'gt70' }, { name: '_include', value: 'Observation:subject' }] });
  assert.equal(obs.total, 1);
  assert.deepEqual(obs.entry.map((e) => e.search.mode).sort(), ['include', 'match']);
  await rejects(admin.fhir.search({ resourceType: 'Patient', params: [{ name: 'shoe-size', value: '9' }] }), 400, /shoe-size/);
  // _filter through the SDK (a POST _search form): and, or, not, a quoted string.
  const filtered = await admin.fhir.search({ resourceType: 'Patient', params: [{ name: '_tag', value: tag }, { name: '_filter', value: 'family eq "Stark" and not (birthdate lt 2000-01-01)' }] });
  assert.deepEqual(filtered.unbundle().map((p) => p.birthDate), ['2001-06-15']);
  await rejects(admin.fhir.search({ resourceType: 'Patient', params: [{ name: '_filter', value: 'family eq' }] }), 400, /_filter/);
});

test('a transaction rewrites urn:uuid references and is all or nothing', async () => {
  const pid = 'urn:uuid:0b3c5d1e-0000-4000-8000-000000000001';
  const res = await admin.fhir.transaction({
    requests: [
      { method: 'POST', url: '/Patient', fullUrl: pid, resource: { resourceType: 'Patient', name: [{ family: `Tx${tag}` }] } },
      { method: 'POST', url: '/Observation', resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: pid } } },
    ],
  });
  assert.equal(res.type, 'transaction-response');
  const [pe, oe] = res.entry;
  assert.equal(pe.response.status, '201'); // bare, as Oystehr: its Terraform provider parses an integer
  assert.equal(oe.resource.subject.reference, `Patient/${pe.resource.id}`);

  const family = `Rollback${tag}`;
  await rejects(
    admin.fhir.transaction({
      requests: [
        { method: 'POST', url: '/Patient', resource: { resourceType: 'Patient', name: [{ family }] } },
        { method: 'POST', url: '/Patient', resource: { resourceType: 'Patient', birthDate: 'not-a-date' } },
      ],
    }),
    400,
  );
  const after = await admin.fhir.search({ resourceType: 'Patient', params: [{ name: 'family', value: family }] });
  assert.equal(after.total, 0, 'the valid entry of a failed transaction was kept');
});

test('a transaction resolves a conditional reference to the one resource it finds', async () => {
  const mrn = `http://x.test/mrn|cr${tag}`;
  const [system, value] = mrn.split('|');
  const patient = await admin.fhir.create({ resourceType: 'Patient', identifier: [{ system, value }] });
  const res = await admin.fhir.transaction({
    requests: [
      { method: 'POST', url: '/Observation', resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient?identifier=${mrn}` } } },
    ],
  });
  assert.equal(res.entry[0].resource.subject.reference, `Patient/${patient.id}`);
  await rejects(
    admin.fhir.transaction({
      requests: [
        { method: 'POST', url: '/Observation', resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient?identifier=${mrn}-none` } } },
      ],
    }),
    412,
  );
});

test('a transaction upserts with a conditional update', async () => {
  // The SDK sends no fullUrl on a PUT entry, so other entries reach the
  // resource by a conditional reference (resolved before any write: after
  // the first run).
  const [system, value] = [`http://x.test/mrn`, `cu${tag}`];
  const upsert = (family) => admin.fhir.transaction({
    requests: [
      { method: 'PUT', url: `/Patient?identifier=${system}|${value}`, resource: { resourceType: 'Patient', identifier: [{ system, value }], name: [{ family }] } },
    ],
  });
  const first = await upsert('First');
  assert.equal(first.entry[0].response.status, '201');
  const id = first.entry[0].resource.id;
  const second = await admin.fhir.transaction({
    requests: [
      { method: 'PUT', url: `/Patient?identifier=${system}|${value}`, resource: { resourceType: 'Patient', identifier: [{ system, value }], name: [{ family: 'Second' }] } },
      { method: 'POST', url: '/Observation', resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient?identifier=${system}|${value}` } } },
    ],
  });
  assert.equal(second.entry[0].response.status, '200');
  assert.equal(second.entry[0].resource.id, id);
  assert.equal(second.entry[1].resource.subject.reference, `Patient/${id}`);
  const patient = await admin.fhir.get({ resourceType: 'Patient', id });
  assert.equal(patient.meta.versionId, '2');
  assert.equal(patient.name[0].family, 'Second');
});

test('a read-only role reads but cannot write, and conditions limit what it sees', async () => {
  const seen = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: `Cond${tag}` }], gender: 'female' });
  const hidden = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: `Cond${tag}` }], gender: 'male' });
  const role = await admin.role.create({
    name: `fhir-reader-${tag}`,
    accessPolicy: { rule: [{ resource: 'FHIR:Patient:*', action: ['FHIR:Read', 'FHIR:Search'], effect: 'Allow', condition: 'Patient?gender=female' }] },
  });
  const m2m = await admin.m2m.create({ name: `fhir-reader-${tag}`, roles: [role.id] });
  const { secret } = await admin.m2m.rotateSecret({ id: m2m.id });
  const ro = sdk(await token(m2m.clientId, secret));
  assert.equal((await ro.fhir.get({ resourceType: 'Patient', id: seen.id })).id, seen.id);
  await rejects(ro.fhir.get({ resourceType: 'Patient', id: hidden.id }), 403);
  const s = await ro.fhir.search({ resourceType: 'Patient', params: [{ name: 'family', value: `Cond${tag}` }] });
  assert.equal(s.total, 1);
  assert.equal(s.unbundle()[0].id, seen.id);
  await rejects(ro.fhir.create({ resourceType: 'Patient' }), 403, /FHIR:Create/);
  await rejects(ro.fhir.delete({ resourceType: 'Patient', id: seen.id }), 403);
  await rejects(ro.fhir.search({ resourceType: 'Observation', params: [] }), 403);
});
