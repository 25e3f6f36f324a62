// Labs end to end: the published @oystehr/sdk's lab service (labApiUrl = <public>/lab/v1, from
// admin-credentials.json) against a real `ward serve` started by e2e/lab_test.go with its MLLP
// listener on: routes, the compendium (ActivityDefinitions loaded with FHIR), the AOE
// questionnaire, and submit, which sends an HL7 v2 ORM^O01 to a loopback lab in the Go test; the
// lab ACKs and sends an ORU^R01 back to Ward's listener, which becomes a DiagnosticReport based on
// the ServiceRequest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, token, sdk, rejects, adminCredentials, sdkFromCredentials, foreignRequests, until, m2mToken } from './sdklib.mjs';

const creds = adminCredentials();
const admin = sdkFromCredentials(creds, await token(creds.clientId, creds.clientSecret));
const adminB = sdk(await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET')));
const labMLLP = env('LAB_MLLP');
const labControl = env('LAB_CONTROL');
const LAB = 'lab-e2e';


// A client holding only the rules given.
const clientWith = async (name, rule) => sdk(await m2mToken(admin, name, rule));

const item = (version, code, name, loinc, aoe) => ({
  resourceType: 'ActivityDefinition', status: 'active', kind: 'ServiceRequest', publisher: 'E2E Reference Lab',
  identifier: [{ system: `urn:ward:lab:${LAB}`, value: code }], version, title: name,
  code: { coding: [{ system: `urn:ward:lab:${LAB}`, code, display: name }, { system: 'http://loinc.org', code: loinc }] },
  extension: [{ url: 'urn:ward:lab:cpt', valueCoding: { system: 'http://www.ama-assn.org/go/cpt', code: '82947' } },
    ...(aoe ? [{ url: 'urn:ward:lab:aoe', valueReference: { reference: '#aoe' } }] : [])],
  ...(aoe ? { contained: [{ resourceType: 'Questionnaire', id: 'aoe', status: 'active', item: [{ linkId: 'fasting', text: 'Is the patient fasting?', type: 'boolean' }] }] } : {}),
});

let route;

test('routes: create, list, get, delete; projects apart', async () => {
  const created = await admin.lab.routeCreate({ accountNumber: 'ACCT-E2E', labGuid: LAB, primaryName: 'Ward Clinic', mllpAddress: labMLLP });
  assert.ok(created.routeGuid);
  assert.ok(created.resultSecret, 'the result secret is shown at creation');
  route = created;
  const list = await admin.lab.routeList();
  assert.deepEqual(list.map((r) => r.routeGuid), [created.routeGuid]);
  const got = await admin.lab.routeGet({ routeGuid: created.routeGuid });
  assert.equal(got.accountNumber, 'ACCT-E2E');
  assert.equal(got.labGuid, LAB);
  assert.equal(got.primaryName, 'Ward Clinic');
  assert.equal(got.mllpAddress, labMLLP);
  assert.equal(got.resultSecret, undefined, 'the secret is never shown again');
  // Another project sees nothing of it.
  assert.deepEqual(await adminB.lab.routeList(), []);
  await rejects(adminB.lab.routeGet({ routeGuid: created.routeGuid }), 404);
  await rejects(adminB.lab.routeDelete({ routeGuid: created.routeGuid, accountNumber: 'ACCT-E2E', labGuid: LAB }), 404);
  // A second route, deleted.
  const spare = await admin.lab.routeCreate({ accountNumber: 'ACCT-SPARE', labGuid: LAB, mllpAddress: labMLLP });
  await rejects(admin.lab.routeDelete({ routeGuid: spare.routeGuid, accountNumber: 'WRONG', labGuid: LAB }), 400, /must be the route's/);
  await admin.lab.routeDelete({ routeGuid: spare.routeGuid, accountNumber: 'ACCT-SPARE', labGuid: LAB });
  await rejects(admin.lab.routeGet({ routeGuid: spare.routeGuid }), 404);
  // Bad input, and addresses the egress policy refuses.
  await rejects(admin.lab.routeCreate({ accountNumber: 'A', labGuid: LAB }), 400, /mllpAddress/);
  await rejects(admin.lab.routeCreate({ accountNumber: 'A', labGuid: LAB, mllpAddress: '169.254.169.254:2575' }), 400, /egress/);
  await rejects(admin.lab.routeCreate({ accountNumber: 'A', labGuid: LAB, mllpAddress: 'no-port' }), 400, /host:port/);
  await fetch(`${labControl}/route`, { method: 'POST', body: JSON.stringify(route) });
});

test('compendium: orderable items and their questionnaire', async () => {
  for (const it of [item('1', 'GLU', 'Glucose (old)', '2345-7', false), item('2', 'GLU', 'Glucose', '2345-7', true), item('2', 'CBC', 'Complete blood count', '58410-2', false)]) {
    await admin.fhir.create(it);
  }
  const all = await admin.lab.orderableItemList({ labIds: LAB });
  assert.deepEqual(all.orderableItems.map((i) => i.item.itemCode), ['CBC', 'GLU']);
  assert.ok(all.orderableItems.every((i) => i.lab.compendiumVersion === '2' && i.lab.labName === 'E2E Reference Lab'));
  const glu = all.orderableItems[1];
  assert.equal(glu.item.itemLoinc, '2345-7');
  assert.deepEqual(glu.item.cptCodes, [{ cptCode: '82947', serviceUnitsCount: 1 }]);
  assert.equal(glu.item.aoe.resourceType, 'Questionnaire');
  const byName = await admin.lab.orderableItemList({ itemNames: 'blood' });
  assert.deepEqual(byName.orderableItems.map((i) => i.item.itemCode), ['CBC']);
  const paged = await admin.lab.orderableItemList({ labIds: LAB, limit: 1 });
  assert.equal(paged.orderableItems.length, 1);
  assert.equal(paged.metadata.nextCursor, '1');
  const q = await admin.lab.orderableItemQuestionnaireGet({ labGuid: LAB, compendiumVersion: '2', itemCode: 'GLU' });
  assert.equal(q.resourceType, 'Questionnaire');
  assert.equal(q.item[0].linkId, 'fasting');
  await rejects(admin.lab.orderableItemQuestionnaireGet({ labGuid: LAB, compendiumVersion: '2', itemCode: 'CBC' }), 404);
  // Another project's compendium is its own.
  assert.deepEqual((await adminB.lab.orderableItemList({ labIds: LAB })).orderableItems, []);
});

let serviceRequest;

test('submit: ORM^O01 to the lab, results back as a DiagnosticReport', async () => {
  const patient = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Lab', given: ['Ada'] }], birthDate: '1990-01-02', gender: 'female' });
  serviceRequest = await admin.fhir.create({ resourceType: 'ServiceRequest', status: 'active', intent: 'order',
    subject: { reference: `Patient/${patient.id}` }, code: { coding: [{ system: `urn:ward:lab:${LAB}`, code: 'GLU', display: 'Glucose' }] } });
  const out = await admin.lab.orderSubmit({ accountNumber: 'ACCT-E2E', serviceRequest: [`ServiceRequest/${serviceRequest.id}`], orderNumber: 'ORD-1' });
  assert.equal(out.status, 'accepted');
  // The same submit again: answered, not sent twice (the Go test counts the lab's orders).
  const again = await admin.lab.orderSubmit({ accountNumber: 'ACCT-E2E', serviceRequest: `ServiceRequest/${serviceRequest.id}`, orderNumber: 'ORD-1' });
  assert.equal(again.controlId, out.controlId);
  assert.equal(again.duplicate, true);
  const reports = await until('the DiagnosticReport', async () => {
    const found = (await admin.fhir.search({ resourceType: 'DiagnosticReport', params: [{ name: 'based-on', value: `ServiceRequest/${serviceRequest.id}` }] })).unbundle();
    return found.length ? found : null;
  });
  assert.equal(reports.length, 1);
  const [report] = reports;
  assert.equal(report.status, 'final');
  assert.equal(report.subject.reference, `Patient/${patient.id}`);
  const obs = await admin.fhir.get({ resourceType: 'Observation', id: report.result[0].reference.split('/')[1] });
  assert.equal(obs.valueQuantity.value, 101);
  assert.equal(obs.valueQuantity.unit, 'mg/dL');
  assert.equal(obs.interpretation[0].coding[0].code, 'H');
  assert.deepEqual(obs.basedOn, [{ reference: `ServiceRequest/${serviceRequest.id}` }]);
  // A final result (OBR-25 F) completes the order, with the report.
  assert.equal((await admin.fhir.get({ resourceType: 'ServiceRequest', id: serviceRequest.id })).status, 'completed');
});

test('submit errors: bad input 400, other project 404, no route 404', async () => {
  await rejects(admin.lab.orderSubmit({ accountNumber: 'ACCT-E2E', serviceRequest: 'Patient/1' }), 400, /ServiceRequest\/<id>/);
  await rejects(admin.lab.orderSubmit({ accountNumber: 'NO-SUCH', serviceRequest: `ServiceRequest/${serviceRequest.id}` }), 404, /no lab route/);
  await rejects(adminB.lab.orderSubmit({ accountNumber: 'ACCT-E2E', serviceRequest: `ServiceRequest/${serviceRequest.id}` }), 404);
});

test('authorization: each endpoint names its Lab action', async () => {
  const fhirOnly = await clientWith('lab-none', [{ resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' }]);
  await rejects(fhirOnly.lab.routeList(), 403, /Lab:GetRoutes/);
  await rejects(fhirOnly.lab.routeCreate({ accountNumber: 'A', labGuid: LAB, mllpAddress: labMLLP }), 403, /Lab:CreateRoute/);
  await rejects(fhirOnly.lab.routeGet({ routeGuid: route.routeGuid }), 403, /Lab:GetSingleRoute/);
  await rejects(fhirOnly.lab.routeDelete({ routeGuid: route.routeGuid, accountNumber: 'ACCT-E2E', labGuid: LAB }), 403, /Lab:DeleteRoute/);
  await rejects(fhirOnly.lab.orderableItemList({ labIds: LAB }), 403, /Lab:SearchOrderableItems/);
  await rejects(fhirOnly.lab.orderSubmit({ accountNumber: 'ACCT-E2E', serviceRequest: `ServiceRequest/${serviceRequest.id}` }), 403, /Lab:SubmitOrder/);
  // Submitting reads the order as the caller: Lab:SubmitOrder alone is not enough.
  const submitOnly = await clientWith('lab-submit', [{ resource: 'Lab:Order', action: ['Lab:SubmitOrder'], effect: 'Allow' }]);
  await rejects(submitOnly.lab.orderSubmit({ accountNumber: 'ACCT-E2E', serviceRequest: `ServiceRequest/${serviceRequest.id}` }), 403, /FHIR:Read/);
  const reader = await clientWith('lab-reader', [{ resource: 'Lab:Route:*', action: ['Lab:GetSingleRoute'], effect: 'Allow' }]);
  assert.equal((await reader.lab.routeGet({ routeGuid: route.routeGuid })).routeGuid, route.routeGuid);
});

test('the SDK never left Ward', () => {
  assert.deepEqual(foreignRequests, []);
});
