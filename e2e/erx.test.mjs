// e-Prescribing end to end: every erx.* method of the published @oystehr/sdk (and erx.getPharmacy,
// which SDK 4.3 adds, by its path) against a real `ward serve` (started by e2e/erx_test.go) with the
// local provider: the project's own Medication, Substance and Organization resources are the
// directories (a small RxNorm extract loaded here), enrollment, pharmacies and cancellations are
// FHIR writes as the caller, and interaction checks say they were not done.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, base, token, sdk, rejects, adminCredentials, sdkFromCredentials, foreignRequests, services, m2mToken } from './sdklib.mjs';

const creds = adminCredentials();
const adminToken = await token(creds.clientId, creds.clientSecret);
const admin = sdkFromCredentials(creds, adminToken);
const adminB = sdk(await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET')));

after(() => assert.deepEqual(foreignRequests, [], 'the SDK called a host other than Ward'));

const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const NDC = 'http://hl7.org/fhir/sid/ndc';
const NCPDP = 'http://ncpdp.org/provider-id';

// A small RxNorm extract, as a team would load it.
const med = (rxcui, text, mg, form, extra = {}) => ({
  resourceType: 'Medication', code: { text, coding: [{ system: RXNORM, code: String(rxcui), display: text }, ...(extra.ndc ? [{ system: NDC, code: extra.ndc }] : [])] },
  form: { text: form }, status: extra.status ?? 'active',
  ingredient: [{ itemCodeableConcept: { text }, strength: { numerator: { value: mg, unit: 'mg' }, denominator: { value: 1, unit: form } } }],
});
await admin.fhir.batch({ requests: [
  med(314076, 'lisinopril 10 MG Oral Tablet', 10, 'tablet', { ndc: '68180-0514-01' }),
  med(314077, 'lisinopril 20 MG Oral Tablet', 20, 'tablet'),
  med(308191, 'amoxicillin 500 MG Oral Capsule', 500, 'capsule'),
  med(197361, 'amlodipine 5 MG Oral Tablet', 5, 'tablet', { status: 'inactive' }),
  { resourceType: 'Medication', code: { text: 'lisinopril compounded (no RxCUI)' } },
  { resourceType: 'Substance', code: { text: 'Peanut', coding: [{ system: 'http://snomed.info/sct', code: '256349002', display: 'Peanut' }] } },
  { resourceType: 'Organization', name: 'Main Street Pharmacy', identifier: [{ system: NCPDP, value: '1234567' }],
    type: [{ text: 'Retail' }], telecom: [{ system: 'phone', value: '(217) 555-0100' }, { system: 'fax', value: '(217) 555-0101' }],
    address: [{ line: ['1 Main St', 'Suite 2'], city: 'Springfield', state: 'IL', postalCode: '62701' }] },
  { resourceType: 'Organization', name: 'All Night Pharmacy', identifier: [{ system: NCPDP, value: '0012345' }],
    type: [{ text: 'Retail' }, { text: '24 Hour' }], telecom: [{ system: 'phone', value: '(217) 555-0199' }],
    address: [{ line: ['9 Elm St'], city: 'Springfield', state: 'IL', postalCode: '62702' }] },
  { resourceType: 'Organization', name: 'Springfield Clinic (not a pharmacy)', address: [{ city: 'Springfield', state: 'IL' }] },
].map((resource) => ({ method: 'POST', url: resource.resourceType, resource })) });

const patient = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Shaw', given: ['Amy'] }], gender: 'female',
  birthDate: '1987-02-20', telecom: [{ system: 'phone', value: '+14231112222' }] });
const sparse = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Doe' }] });
const practitioner = await admin.fhir.create({ resourceType: 'Practitioner', name: [{ family: 'Who', given: ['Doc'] }] });

// A client holding only the rules given.
const clientWith = async (name, rule) => sdk(await m2mToken(admin, name, rule));

// erx.getPharmacy is SDK 4.3's; 4.2.6 has no method, so the same request by hand.
async function getPharmacy(tok, id) {
  const res = await fetch(`${services.erxApiUrl}/pharmacy/${id}`, { headers: { authorization: `Bearer ${tok}` } });
  return { status: res.status, body: await res.json() };
}

test('configuration names the provider and says interactions have no source', async () => {
  assert.deepEqual(await admin.erx.getConfiguration(), { configured: true, provider: 'local', interactionsSource: 'none' });
  assert.deepEqual((await admin.project.update({ providers: { erx: 'local' } })).providers, { erx: 'local' });
  await rejects(admin.project.update({ providers: { erx: 'dosespot' } }), 400, /no provider "dosespot"/);
  assert.deepEqual((await admin.project.update({ providers: { erx: null } })).providers, {});
});

test('medications, details and allergens come from the project\'s directory', async () => {
  const found = await admin.erx.searchMedications({ name: 'lisinopril' });
  assert.deepEqual(found.map((m) => m.rxcui).sort(), [314076, 314077], 'the one without an RxCUI is not in the directory');
  const ten = found.find((m) => m.rxcui === 314076);
  assert.deepEqual(ten, { id: 314076, routedDoseFormDrugId: 314076, name: 'lisinopril 10 MG Oral Tablet', rxcui: 314076,
    ndc: '68180-0514-01', strength: '10 mg', isObsolete: false, isBrandName: false, isOtc: false });
  assert.equal((await admin.erx.searchMedications({ name: 'amlodipine' }))[0].isObsolete, true);
  assert.deepEqual(await admin.erx.searchMedications({ name: 'ibuprofen' }), []);

  for (const params of [{ rxcui: 314076 }, { drugId: 314076 }, { ndc: '68180-0514-01' }]) {
    const m = await admin.erx.getMedication(params);
    assert.equal(m.name, 'lisinopril 10 MG Oral Tablet', JSON.stringify(params));
    assert.equal(m.doseForm, 'tablet');
  }
  await rejects(admin.erx.getMedication({ rxcui: 999999 }), 404, /no medication/);
  await rejects(admin.erx.getMedication({}), 400, /exactly one of drugId, ndc or rxcui/);
  await rejects(admin.erx.getMedication({ rxcui: 314076, ndc: '1' }), 400, /exactly one/);
  await rejects(admin.erx.getMedication({ rxcui: 'x' }), 400, /positive integer/);

  assert.deepEqual(await admin.erx.searchAllergens({ name: 'peanut' }),
    [{ id: 256349002, name: 'Peanut', type: 'FoodAndEnvironmentalAllergens', category: 'CommonAllergens' }]);
  assert.deepEqual((await admin.erx.searchAllergens({ name: 'amoxicillin' })).map((a) => [a.id, a.type]), [[308191, 'RoutedDoseFormDrugs']]);
});

test('pharmacies: search with paging, one by id', async () => {
  const r = await admin.erx.searchPharmacies({ city: 'Springfield' });
  assert.deepEqual(r.data.map((p) => p.name), ['All Night Pharmacy', 'Main Street Pharmacy'], 'only Organizations with an NCPDP id, by name');
  assert.deepEqual(r.metadata, { hasPrevious: false, hasNext: false, total: 2, currentPage: 1, totalPages: 1, pageSize: 20 });
  assert.deepEqual(r.data[1], { id: 1234567, name: 'Main Street Pharmacy', address1: '1 Main St', address2: 'Suite 2', city: 'Springfield',
    state: 'IL', zipCode: '62701', phone: '(217) 555-0100', fax: '(217) 555-0101', specialties: ['Retail'], ncpdpId: '1234567' });
  assert.deepEqual((await admin.erx.searchPharmacies({ phoneOrFax: '2175550101' })).data.map((p) => p.id), [1234567], 'fax number matches');
  assert.deepEqual((await admin.erx.searchPharmacies({ specialty: '24 hour' })).data.map((p) => p.id), [12345]);
  assert.deepEqual((await admin.erx.searchPharmacies({ ncpdpId: '0012345' })).data.map((p) => p.name), ['All Night Pharmacy']);
  assert.deepEqual((await admin.erx.searchPharmacies({ zipCode: '62701', name: 'main' })).data.map((p) => p.id), [1234567]);
  const past = await admin.erx.searchPharmacies({ city: 'Springfield', pageNumber: '2' });
  assert.deepEqual(past.data, []);
  assert.equal(past.metadata.hasPrevious, true);
  await rejects(admin.erx.searchPharmacies({}), 400, /at least one of/);
  await rejects(admin.erx.searchPharmacies({ city: 'x', pageNumber: '0' }), 400, /pageNumber/);
  await rejects(admin.erx.searchPharmacies({ ncpdpId: '12a' }), 400, /digits/);

  const one = await getPharmacy(adminToken, 12345);
  assert.equal(one.status, 200);
  assert.equal(one.body.name, 'All Night Pharmacy');
  assert.equal(one.body.ncpdpId, '0012345');
  assert.deepEqual(await getPharmacy(adminToken, 7654321), { status: 404, body: { message: 'no pharmacy 7654321 in this project\'s directory', code: 404 } });
  assert.equal((await getPharmacy(adminToken, 'x')).status, 400);
});

test('patients: sync checks demographics, pharmacies join the Patient', async () => {
  assert.equal(await admin.erx.syncPatient({ patientId: patient.id }), null);
  await rejects(admin.erx.syncPatient({ patientId: sparse.id }), 400, /no first name, no birthDate, no gender, no phone number/);
  await rejects(admin.erx.syncPatient({ patientId: 'no-such-patient' }), 404);

  await admin.erx.addPatientPharmacy({ patientId: patient.id, pharmacyId: 1234567, setAsPrimary: true });
  await admin.erx.addPatientPharmacy({ patientId: patient.id, pharmacyId: 12345, setAsPrimary: true });
  await admin.erx.addPatientPharmacy({ patientId: patient.id, pharmacyId: 12345, setAsPrimary: true }); // again: still one entry
  const p = await admin.fhir.get({ resourceType: 'Patient', id: patient.id });
  const list = p.extension.filter((e) => e.url === 'urn:ward:erx:pharmacy').map((e) => ({
    ref: e.extension.find((x) => x.url === 'pharmacy').valueReference.display,
    primary: e.extension.find((x) => x.url === 'primary').valueBoolean }));
  assert.deepEqual(list, [{ ref: 'Main Street Pharmacy', primary: false }, { ref: 'All Night Pharmacy', primary: true }]);
  await rejects(admin.erx.addPatientPharmacy({ patientId: patient.id, pharmacyId: 7654321 }), 404, /no pharmacy/);
  await rejects(admin.erx.addPatientPharmacy({ patientId: patient.id }), 400, /pharmacyId is required/);
  await rejects(admin.erx.addPatientPharmacy({ patientId: patient.id, pharmacyId: 'x' }), 400);
});

test('interaction checks say they were not done (no knowledge source), never an empty "no interactions"', async () => {
  const allergy = await admin.erx.checkAllergyInteractions({ patientId: patient.id });
  assert.equal(allergy.length, 1);
  assert.match(allergy[0].message, /^NOT CHECKED: .*no drug interaction knowledge source.*drug-allergy/);
  assert.equal(allergy[0].source, 'none');
  assert.equal(allergy[0].checked, false);
  const meds = await admin.erx.checkMedicationInteractions({ patientId: patient.id });
  assert.deepEqual(meds.map((m) => [m.severityLevel, m.source, m.checked, m.includesPending]), [['Unknown', 'none', false, false]]);
  assert.match(meds[0].message, /drug-drug interactions were not checked/);
  const pre = await admin.erx.checkPrecheckInteractions({ patientId: patient.id, drugId: '314076' });
  assert.equal(pre.source, 'none');
  assert.equal(pre.checked, false);
  assert.equal(pre.allergies.length, 1);
  assert.equal(pre.medications.length, 1);
  await rejects(admin.erx.checkPrecheckInteractions({ patientId: patient.id, drugId: '999999' }), 404, /no medication/);
  await rejects(admin.erx.checkPrecheckInteractions({ patientId: patient.id, drugId: 'abc' }), 400);
  await rejects(admin.erx.checkAllergyInteractions({ patientId: 'no-such-patient' }), 404);
});

test('prescriptions: cancel is a status change of the patient\'s MedicationRequest', async () => {
  const mr = (status, subject = patient.id) => admin.fhir.create({ resourceType: 'MedicationRequest', status, intent: 'order',
    subject: { reference: `Patient/${subject}` }, medicationCodeableConcept: { coding: [{ system: RXNORM, code: '314076' }] } });
  const active = await mr('active');
  assert.equal(await admin.erx.cancelPrescription({ patientId: patient.id, medicationRequestId: active.id }), null);
  const got = await admin.fhir.get({ resourceType: 'MedicationRequest', id: active.id });
  assert.equal(got.status, 'cancelled');
  await admin.erx.cancelPrescription({ patientId: patient.id, medicationRequestId: active.id }); // again: no change
  assert.equal((await admin.fhir.get({ resourceType: 'MedicationRequest', id: active.id })).meta.versionId, got.meta.versionId);
  const other = await mr('active', sparse.id);
  await rejects(admin.erx.cancelPrescription({ patientId: patient.id, medicationRequestId: other.id }), 404, /has no prescription/);
  await rejects(admin.erx.cancelPrescription({ patientId: patient.id, medicationRequestId: (await mr('completed')).id }), 409, /completed/);
  await rejects(admin.erx.cancelPrescription({ patientId: patient.id, medicationRequestId: 'nope' }), 404);
});

test('practitioner enrollment is a PractitionerRole; connect gives a link', async () => {
  const none = { registered: false, confirmed: false, active: false, identityVerified: false, twoFactorEnrolled: false, isPrescribing: false };
  assert.deepEqual(await admin.erx.checkPractitionerEnrollment({ practitionerId: practitioner.id }), none);
  await admin.erx.enrollPractitioner({ practitionerId: practitioner.id, isPrescribing: true });
  assert.deepEqual(await admin.erx.checkPractitionerEnrollment({ practitionerId: practitioner.id }),
    { ...none, registered: true, confirmed: true, active: true, isPrescribing: true });
  await admin.erx.enrollPractitioner({ practitionerId: practitioner.id, isPrescribing: false });
  assert.equal((await admin.erx.checkPractitionerEnrollment({ practitionerId: practitioner.id })).isPrescribing, false);
  const roles = (await admin.fhir.search({ resourceType: 'PractitionerRole', params: [{ name: 'practitioner', value: `Practitioner/${practitioner.id}` }] })).unbundle();
  assert.equal(roles.length, 1, 'one enrollment, updated');
  assert.deepEqual(roles[0].meta.tag, [{ system: 'urn:ward:erx', code: 'enrollment' }]);
  await admin.erx.unenrollPractitioner({ practitionerId: practitioner.id });
  assert.deepEqual(await admin.erx.checkPractitionerEnrollment({ practitionerId: practitioner.id }), none);
  await admin.erx.unenrollPractitioner({ practitionerId: practitioner.id }); // not enrolled: nothing to do
  await rejects(admin.erx.enrollPractitioner({ practitionerId: 'no-such-practitioner' }), 404);

  const { ssoLink } = await admin.erx.connectPractitioner({ patientId: patient.id });
  assert.equal(ssoLink, `${base}/console/fhir/MedicationRequest/new?subject=Patient%2F${patient.id}`);
  await rejects(admin.erx.connectPractitioner({ patientId: 'no-such-patient' }), 404);
});

test('authorization: each method\'s action, FHIR rights for patient data, projects apart', async () => {
  const fhirOnly = await clientWith('erx-none', [{ resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' }]);
  const denied = [
    [() => fhirOnly.erx.searchAllergens({ name: 'pe' }), 'eRx:SearchAllergen on eRx:Allergen'],
    [() => fhirOnly.erx.searchMedications({ name: 'li' }), 'eRx:SearchMedication on eRx:Medication'],
    [() => fhirOnly.erx.getMedication({ rxcui: 314076 }), 'eRx:GetMedication on eRx:Medication'],
    [() => fhirOnly.erx.getConfiguration(), 'eRx:GetConfiguration on eRx:Configuration'],
    [() => fhirOnly.erx.checkAllergyInteractions({ patientId: patient.id }), 'eRx:Check on eRx:Interaction'],
    [() => fhirOnly.erx.checkMedicationInteractions({ patientId: patient.id }), 'eRx:Check on eRx:Interaction'],
    [() => fhirOnly.erx.checkPrecheckInteractions({ patientId: patient.id, drugId: '314076' }), 'eRx:Check on eRx:Interaction'],
    [() => fhirOnly.erx.addPatientPharmacy({ patientId: patient.id, pharmacyId: 1234567 }), 'eRx:AddPatientPharmacy on eRx:Patient'],
    [() => fhirOnly.erx.cancelPrescription({ patientId: patient.id, medicationRequestId: 'x' }), 'eRx:CancelPrescription on eRx:Prescription'],
    [() => fhirOnly.erx.syncPatient({ patientId: patient.id }), 'eRx:SyncPatient on eRx:Patient'],
    [() => fhirOnly.erx.searchPharmacies({ city: 'Springfield' }), 'eRx:SearchPharmacy on eRx:Pharmacy'],
    [() => fhirOnly.erx.connectPractitioner({}), 'eRx:Connect on eRx:SSO'],
    [() => fhirOnly.erx.checkPractitionerEnrollment({ practitionerId: practitioner.id }), 'eRx:Read on eRx:Enrollment'],
    [() => fhirOnly.erx.enrollPractitioner({ practitionerId: practitioner.id }), 'eRx:Create on eRx:Enrollment'],
    [() => fhirOnly.erx.unenrollPractitioner({ practitionerId: practitioner.id }), 'eRx:Delete on eRx:Enrollment'],
  ];
  for (const [call, what] of denied) await rejects(call(), 403, new RegExp(what));

  // eRx rights alone: the directories answer; patient data needs the FHIR rights too.
  const erxOnly = await clientWith('erx-only', [{ resource: 'eRx:*', action: ['eRx:*'], effect: 'Allow' }]);
  assert.equal((await erxOnly.erx.searchMedications({ name: 'lisinopril' })).length, 2);
  assert.equal((await erxOnly.erx.searchPharmacies({ state: 'IL' })).data.length, 2);
  await assert.rejects(erxOnly.erx.syncPatient({ patientId: patient.id }), (e) => e.code === 403 || e.code === 404);
  await assert.rejects(erxOnly.erx.enrollPractitioner({ practitionerId: practitioner.id }), (e) => e.code === 403 || e.code === 404);

  // Project B sees none of project A: its directory is its own, A's ids are 404.
  assert.deepEqual(await adminB.erx.searchMedications({ name: 'lisinopril' }), []);
  assert.equal((await adminB.erx.searchPharmacies({ city: 'Springfield' })).metadata.total, 0);
  await rejects(adminB.erx.syncPatient({ patientId: patient.id }), 404);
  await rejects(adminB.erx.checkAllergyInteractions({ patientId: patient.id }), 404);
  await rejects(adminB.erx.addPatientPharmacy({ patientId: patient.id, pharmacyId: 1234567 }), 404);
  await rejects(adminB.erx.checkPractitionerEnrollment({ practitionerId: practitioner.id }), 404);
  await rejects(adminB.erx.connectPractitioner({ patientId: patient.id }), 404);
  const mine = await admin.fhir.create({ resourceType: 'MedicationRequest', status: 'active', intent: 'order',
    subject: { reference: `Patient/${patient.id}` }, medicationCodeableConcept: { text: 'x' } });
  await rejects(adminB.erx.cancelPrescription({ patientId: patient.id, medicationRequestId: mine.id }), 404);
  assert.equal((await admin.fhir.get({ resourceType: 'MedicationRequest', id: mine.id })).status, 'active');
});

test('hostile input is a clear 400, never a server error', async () => {
  await rejects(admin.erx.searchMedications({ name: 'x'.repeat(201) }), 400, /longer than 200/);
  await rejects(admin.erx.searchMedications({ name: '' }), 400, /name is required/);
  await rejects(admin.erx.searchMedications({ name: 'a\u0000b' }), 400, /text/);
  assert.deepEqual(await admin.erx.searchMedications({ name: "' OR 1=1 --" }), []);
  assert.deepEqual(await admin.erx.searchAllergens({ name: '%_%' }), []);
  await rejects(admin.erx.syncPatient({ patientId: 'a'.repeat(65) }), 400, /FHIR id/);
  await rejects(admin.erx.checkPractitionerEnrollment({ practitionerId: 'a b' }), 400, /FHIR id/);
  const res = await fetch(`${services.erxApiUrl}/patient/${patient.id}/pharmacies`, { method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{"pharmacyId":' });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).code, 400);
});
