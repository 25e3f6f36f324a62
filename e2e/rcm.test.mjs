// Revenue cycle end to end: the published @oystehr/sdk's rcm.eligibilityCheck,
// rcm.validateProfessionalClaim and rcm.submitProfessionalClaim, configured from
// admin-credentials.json alone, against a real `ward serve` (started by e2e/rcm_test.go)
// whose projects use the local clearinghouse (270/271 answered from the project's
// Coverage, 837P acknowledged with a 277CA). Payers (SDK 4.3's getPayer/listPayers;
// the installed 4.2.6 has neither) are called with fetch at the same paths.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { env, token, sdk, rejects, adminCredentials, sdkFromCredentials, foreignRequests, services, m2mToken } from './sdklib.mjs';

const creds = adminCredentials();
const adminToken = await token(creds.clientId, creds.clientSecret);
const admin = sdkFromCredentials(creds, adminToken);
const otherToken = await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET'));
const other = sdk(otherToken);
const form = JSON.parse(readFileSync(new URL('../internal/rcm/testdata/cms1500.json', import.meta.url), 'utf8'));
const today = new Date().toISOString().slice(0, 10);

after(() => assert.deepEqual(foreignRequests, [], 'the SDK called a host other than Ward'));

const npi = (v) => ({ system: 'http://hl7.org/fhir/sid/us-npi', value: v });
const payer = await admin.fhir.create({ resourceType: 'Organization', name: 'XYZ Insurance',
  type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'pay' }] }],
  identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NIIP' }] }, value: 'XYZ01' }] });
const clinic = await admin.fhir.create({ resourceType: 'Organization', name: 'Springfield Clinic', identifier: [npi('1234567893')],
  type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov' }] }] });
const patient = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Doe', given: ['Jane'] }], birthDate: '1985-04-15', gender: 'female' });
const coverage = await admin.fhir.create({ resourceType: 'Coverage', status: 'active', subscriberId: 'W123456789',
  beneficiary: { reference: `Patient/${patient.id}` }, payor: [{ reference: `Organization/${payer.id}` }],
  period: { start: '2026-01-01', end: '2027-12-31' },
  class: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-class', code: 'plan' }] }, value: 'GOLD', name: 'Gold PPO' }],
  costToBeneficiary: [
    { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-copay-type', code: 'gpvisit' }] }, valueMoney: { value: 25, currency: 'USD' } },
    { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-copay-type', code: 'deductible' }] }, valueMoney: { value: 1500, currency: 'USD' } },
  ] });
const request = (cov, pat = patient) => admin.fhir.create({ resourceType: 'CoverageEligibilityRequest', status: 'active', purpose: ['validation'],
  patient: { reference: `Patient/${pat.id}` }, created: today, servicedDate: today, provider: { reference: `Organization/${clinic.id}` },
  insurer: { reference: `Organization/${payer.id}` }, insurance: [{ focal: true, coverage: { reference: `Coverage/${cov.id}` } }] });

test('eligibility: a 270 answered from the project\'s Coverage, stored as a CoverageEligibilityResponse', async () => {
  const req = await request(coverage);
  const res = await admin.rcm.eligibilityCheck({ eligibilityRequestId: req.id });
  assert.equal(res.resourceType, 'CoverageEligibilityResponse');
  assert.equal(res.outcome, 'complete');
  assert.equal(res.request.reference, `CoverageEligibilityRequest/${req.id}`);
  assert.equal(res.insurance[0].coverage.reference, `Coverage/${coverage.id}`);
  assert.equal(res.insurance[0].inforce, true);
  const items = res.insurance[0].item;
  assert.ok(items.some((i) => i.name === 'Gold PPO'));
  const benefits = items.flatMap((i) => i.benefit ?? []);
  assert.ok(benefits.some((b) => b.type.coding[0].code === 'copay' && b.allowedMoney.value === 25), JSON.stringify(items));
  assert.ok(benefits.some((b) => b.type.coding[0].code === 'deductible' && b.allowedMoney.value === 1500));
  // Stored, as the caller.
  const stored = await admin.fhir.get({ resourceType: 'CoverageEligibilityResponse', id: res.id });
  assert.equal(stored.insurance[0].inforce, true);
});

test('eligibility: lapsed coverage is not in force; an unknown member is the payer\'s error', async () => {
  const lapsed = await admin.fhir.create({ ...coverage, id: undefined, meta: undefined, subscriberId: 'W000000001', period: { start: '2020-01-01', end: '2020-12-31' } });
  const res = await admin.rcm.eligibilityCheck({ eligibilityRequestId: (await request(lapsed)).id });
  assert.equal(res.outcome, 'complete');
  assert.equal(res.insurance[0].inforce, false);
  // The member id with someone else's name and birth date: the local payer finds coverage by
  // identifier or by the subscriber's demographics (R4 cannot search subscriberId), so not here.
  const stranger = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Nobody' }], birthDate: '1990-01-01' });
  const req = await admin.fhir.create({ resourceType: 'CoverageEligibilityRequest', status: 'active', purpose: ['validation'],
    patient: { reference: `Patient/${stranger.id}` }, created: today, provider: { reference: `Organization/${clinic.id}` },
    insurer: { reference: `Organization/${payer.id}` }, insurance: [{ coverage: { reference: `Coverage/${lapsed.id}` } }] });
  const unknown = await admin.rcm.eligibilityCheck({ eligibilityRequestId: req.id });
  assert.equal(unknown.outcome, 'error');
  assert.equal(unknown.error[0].code.coding[0].code, '75'); // AAA03: subscriber not found
  assert.equal(unknown.insurance, undefined);
});

test('eligibility: bad input is a clear 4xx', async () => {
  await rejects(admin.rcm.eligibilityCheck({ eligibilityRequestId: 'no-such-request' }), 404);
  await rejects(admin.rcm.eligibilityCheck({}), 400, /eligibilityRequestId/);
  const noNPI = await admin.fhir.create({ resourceType: 'Organization', name: 'No NPI' });
  const req = await admin.fhir.create({ resourceType: 'CoverageEligibilityRequest', status: 'active', purpose: ['validation'],
    patient: { reference: `Patient/${patient.id}` }, created: today, provider: { reference: `Organization/${noNPI.id}` },
    insurer: { reference: `Organization/${payer.id}` }, insurance: [{ coverage: { reference: `Coverage/${coverage.id}` } }] });
  await rejects(admin.rcm.eligibilityCheck({ eligibilityRequestId: req.id }), 400, /2100B NM109 \(Organization\/.*identifier\)/);
});

test('validate: a good claim has no errors; a broken one names loop, element and FHIR element', async () => {
  const ok = await admin.rcm.validateProfessionalClaim({ cms1500: form, submitterOrganizationName: 'Springfield Clinic', payerId: 'XYZ01' });
  assert.deepEqual(ok.errors, []);
  const broken = structuredClone(form);
  broken._33_billingProviderInfoAndPhone._a_npiId = '1234567890';
  broken._28_totalCharge = 999;
  broken._24_services[1]._e_diagnosisPointer = 'D';
  const res = await admin.rcm.validateProfessionalClaim({ cms1500: broken, submitterOrganizationName: 'Springfield Clinic', payerId: 'XYZ01' });
  const by = (loc) => res.errors.find((e) => e.location === loc);
  assert.equal(by('Loop 2010AA NM109')?.field, 'Claim.contained[billing].identifier[0].value', JSON.stringify(res.errors));
  assert.equal(by('Loop 2010AA NM109').code, 'npi');
  assert.equal(by('Loop 2300 CLM02')?.field, 'Claim.total.value');
  assert.equal(by('Loop 2400 SV107-1')?.field, 'Claim.item[1].diagnosisSequence[0]');
  // A payer id the project does not have.
  const unknown = await admin.rcm.validateProfessionalClaim({ cms1500: form, submitterOrganizationName: 'Springfield Clinic', payerId: 'NOPE' });
  assert.ok(unknown.errors.some((e) => e.field === 'payerId' && e.location === 'Loop 2010BB NM103'));
  await rejects(admin.rcm.validateProfessionalClaim({ submitterOrganizationName: 'x', payerId: 'XYZ01' }), 400, /cms1500/);
});

test('submit: the Claim is stored, sent, and its 277CA stored as a ClaimResponse', async () => {
  const claim = await admin.rcm.submitProfessionalClaim({ cms1500: form, submitterOrganizationName: 'Springfield Clinic', payerId: 'XYZ01' });
  assert.equal(claim.resourceType, 'Claim');
  assert.equal(claim.total.value, 155.5);
  assert.ok(claim.identifier.some((i) => i.system === 'urn:ward:clearinghouse:local'));
  const link = claim.extension.find((e) => e.url === 'urn:ward:claim-response');
  const cr = await admin.fhir.get({ resourceType: 'ClaimResponse', id: link.valueReference.reference.split('/')[1] });
  assert.equal(cr.outcome, 'queued');
  assert.equal(cr.request.reference, `Claim/${claim.id}`);
  assert.ok(cr.identifier.some((i) => i.value === 'ACCT-1001'));
  // testMode: stored, nothing sent.
  const dry = await admin.rcm.submitProfessionalClaim({ testMode: true, cms1500: form, submitterOrganizationName: 'Springfield Clinic', payerId: 'XYZ01' });
  assert.equal(dry.extension, undefined);
  // An invalid claim is refused, and nothing is stored.
  const before = (await admin.fhir.search({ resourceType: 'Claim', params: [{ name: '_summary', value: 'count' }] })).total;
  const bad = structuredClone(form);
  bad._3_patientBirthDate = { day: '31', month: '2', year: '1985' };
  await rejects(admin.rcm.submitProfessionalClaim({ cms1500: bad, submitterOrganizationName: 'Springfield Clinic', payerId: 'XYZ01' }), 400,
    /loop 2010BA DMG02 \(Claim\.contained\[patient\]\.birthDate\)/);
  assert.equal((await admin.fhir.search({ resourceType: 'Claim', params: [{ name: '_summary', value: 'count' }] })).total, before);
});

test('a stored FHIR Claim (claimId, Ward\'s addition) validates and submits by reference', async () => {
  const billing = await admin.fhir.create({ resourceType: 'Organization', name: 'Springfield Clinic',
    identifier: [npi('1234567893'), { system: 'urn:oid:2.16.840.1.113883.4.4', value: '12-3456789' }],
    telecom: [{ system: 'phone', value: '+1 (217) 555-0199' }],
    address: [{ line: ['100 Main St'], city: 'Springfield', state: 'IL', postalCode: '62701-1234' }] });
  const pat = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Roe', given: ['Rita'] }], birthDate: '1970-01-31', gender: 'female',
    address: [{ line: ['12 Elm St'], city: 'Springfield', state: 'IL', postalCode: '62704' }] });
  const cov = await admin.fhir.create({ resourceType: 'Coverage', status: 'active', subscriberId: 'R100', beneficiary: { reference: `Patient/${pat.id}` },
    payor: [{ reference: `Organization/${payer.id}` }] });
  const claim = await admin.fhir.create({ resourceType: 'Claim', status: 'active', use: 'claim', created: today,
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/claim-type', code: 'professional' }] },
    patient: { reference: `Patient/${pat.id}` }, provider: { reference: `Organization/${billing.id}` }, insurer: { reference: `Organization/${payer.id}` },
    priority: { coding: [{ code: 'normal' }] }, identifier: [{ value: 'PCN-77' }],
    diagnosis: [{ sequence: 1, diagnosisCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'Z00.00' }] } }],
    insurance: [{ sequence: 1, focal: true, coverage: { reference: `Coverage/${cov.id}` } }],
    item: [{ sequence: 1, diagnosisSequence: [1], productOrService: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '99396' }] },
      servicedDate: '2026-11-20', locationCodeableConcept: { coding: [{ code: '11' }] }, net: { value: 210, currency: 'USD' } }] });
  const ok = await admin.rcm.validateProfessionalClaim({ claimId: claim.id, submitterOrganizationName: 'Springfield Clinic' });
  assert.deepEqual(ok.errors, []);
  // The errors name the referenced resource's element.
  await admin.fhir.update({ ...billing, address: [{ line: ['PO Box 9'], city: 'Springfield', state: 'IL', postalCode: '62701' }] });
  const bad = await admin.rcm.validateProfessionalClaim({ claimId: claim.id, submitterOrganizationName: 'Springfield Clinic' });
  assert.ok(bad.errors.some((e) => e.location === 'Loop 2010AA N301' && e.field === `Organization/${billing.id}.address[0].line[0]`), JSON.stringify(bad.errors));
  assert.ok(bad.errors.some((e) => e.location === 'Loop 2010AA N403' && e.field === `Organization/${billing.id}.address[0].postalCode`));
  await admin.fhir.update({ ...billing, meta: undefined });
  const sent = await admin.rcm.submitProfessionalClaim({ claimId: claim.id, submitterOrganizationName: 'Springfield Clinic' });
  assert.equal(sent.id, claim.id, 'the stored Claim is the one submitted');
  const link = sent.extension.find((e) => e.url === 'urn:ward:claim-response');
  const cr = await admin.fhir.get({ resourceType: 'ClaimResponse', id: link.valueReference.reference.split('/')[1] });
  assert.equal(cr.outcome, 'queued');
  assert.ok(cr.identifier.some((i) => i.value === 'PCN-77'));
  await rejects(other.rcm.validateProfessionalClaim({ claimId: claim.id, submitterOrganizationName: 'x' }), 404);
  await rejects(admin.rcm.validateProfessionalClaim({ claimId: claim.id, cms1500: form, submitterOrganizationName: 'x' }), 400, /not both/);
});

async function call(tok, path) {
  const res = await fetch(`${services.projectApiUrl}${path}`, { headers: { authorization: `Bearer ${tok}` } });
  return { status: res.status, body: await res.json() };
}

test('payers: Organizations of type pay, read and searched', async () => {
  const one = await call(adminToken, `/rcm/payer/${payer.id}`);
  assert.equal(one.status, 200);
  assert.equal(one.body.name, 'XYZ Insurance');
  assert.equal((await call(adminToken, `/rcm/payer/${clinic.id}`)).status, 404); // not a payer
  const list = await call(adminToken, '/rcm/payer?name=xyz');
  assert.equal(list.body.resourceType, 'Bundle');
  assert.deepEqual(list.body.entry.map((e) => e.resource.id), [payer.id]);
  assert.equal((await call(adminToken, '/rcm/payer?payerId=XYZ01')).body.entry.length, 1);
  assert.equal((await call(adminToken, '/rcm/payer?payerId=NOPE')).body.entry.length, 0);
  assert.equal((await call(adminToken, '/rcm/payer?_count=x')).status, 400);
});

// A client holding only the rules given, and its token.
async function clientWith(name, rule) {
  const tok = await m2mToken(admin, name, rule);
  return { client: sdk(tok), tok };
}

test('authorization: the seed\'s actions, FHIR as the caller, projects apart', async () => {
  const { client: fhirOnly, tok: fhirTok } = await clientWith('rcm-none', [{ resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' }]);
  const req = await request(coverage);
  await rejects(fhirOnly.rcm.eligibilityCheck({ eligibilityRequestId: req.id }), 403, /RCM:CheckInsuranceEligibility on RCM:InsuranceEligibility/);
  await rejects(fhirOnly.rcm.validateProfessionalClaim({ cms1500: form, submitterOrganizationName: 'x', payerId: 'XYZ01' }), 403, /RCM:ValidateProfessionalClaim/);
  await rejects(fhirOnly.rcm.submitProfessionalClaim({ cms1500: form, submitterOrganizationName: 'x', payerId: 'XYZ01' }), 403, /RCM:SubmitProfessionalClaim/);
  assert.equal((await call(fhirTok, `/rcm/payer/${payer.id}`)).status, 403);
  assert.equal((await call(fhirTok, '/rcm/payer')).status, 403);
  // The RCM action alone: the FHIR reads and the write are the caller's too.
  const { client: rcmOnly } = await clientWith('rcm-only', [{ resource: 'RCM:*', action: ['RCM:*'], effect: 'Allow' }]);
  await rejects(rcmOnly.rcm.eligibilityCheck({ eligibilityRequestId: req.id }), 403, /FHIR:Read/);
  const { client: checker } = await clientWith('rcm-checker', [
    { resource: 'RCM:InsuranceEligibility', action: ['RCM:CheckInsuranceEligibility'], effect: 'Allow' },
    { resource: 'FHIR:*', action: ['FHIR:Read', 'FHIR:Search'], effect: 'Allow' },
    { resource: 'FHIR:CoverageEligibilityResponse:*', action: ['FHIR:Create'], effect: 'Allow' },
  ]);
  assert.equal((await checker.rcm.eligibilityCheck({ eligibilityRequestId: req.id })).insurance[0].inforce, true);
  // Another project sees none of this project's resources.
  await rejects(other.rcm.eligibilityCheck({ eligibilityRequestId: req.id }), 404);
  assert.equal((await call(otherToken, `/rcm/payer/${payer.id}`)).status, 404);
  assert.equal((await call(otherToken, '/rcm/payer?payerId=XYZ01')).body.entry.length, 0);
  const theirs = await other.rcm.validateProfessionalClaim({ cms1500: form, submitterOrganizationName: 'x', payerId: 'XYZ01' });
  assert.ok(theirs.errors.some((e) => e.field === 'payerId'), 'another project found this project\'s payer');
});

async function post(tok, path, body) {
  const res = await fetch(`${services.projectApiUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

// An 835 paying ACCT-1001 (the form's account number) 100 of 155.50, and a claim nobody here has.
const era = ['ISA*00*          *00*          *ZZ*XYZ01          *ZZ*WARD           *261210*1200*^*00501*000000009*0*P*:',
  'GS*HP*XYZ01*WARD*20261210*1200*9*X*005010X221A1', 'ST*835*0001*005010X221A1',
  'BPR*I*100*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261210', 'TRN*1*EFT12345*1512345678',
  'N1*PR*XYZ Insurance', 'N1*PE*Springfield Clinic*XX*1234567893', 'LX*1',
  'CLP*ACCT-1001*1*155.5*100*25*12*PAYER-77', 'CAS*CO*45*30.5', 'SVC*HC:99213*120.5*80', 'CAS*PR*3*25', 'SVC*HC:87880*35*20',
  'CLP*UNKNOWN-1*4*50*0**12*PAYER-78',
  'SE*13*0001', 'GE*1*9', 'IEA*1*000000009'].join('~') + '~';

test('an 835 (POST /v1/rcm/era, Ward\'s addition) becomes ClaimResponses of the project\'s Claims', async () => {
  const res = await post(adminToken, '/rcm/era', { x12: era });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.unmatched, ['UNKNOWN-1']);
  assert.equal(res.body.claimResponses.length, 1);
  const cr = await admin.fhir.get({ resourceType: 'ClaimResponse', id: res.body.claimResponses[0].split('/')[1] });
  assert.equal(cr.outcome, 'complete');
  assert.equal(cr.payment.amount.value, 100);
  assert.equal(cr.payment.date, '2026-12-10');
  assert.ok(cr.item[0].adjudication.some((a) => a.category.coding[0].code === 'copay' && a.amount.value === 25));
  const paid = await admin.fhir.get({ resourceType: 'Claim', id: cr.request.reference.split('/')[1] });
  assert.ok(paid.identifier.some((i) => i.value === 'ACCT-1001'));
  // Another project has no such Claim; garbage is a 400; the action is needed.
  assert.deepEqual((await post(otherToken, '/rcm/era', { x12: era })).body.unmatched, ['ACCT-1001', 'UNKNOWN-1']);
  assert.equal((await post(adminToken, '/rcm/era', { x12: 'ISA*garbage' })).status, 400);
  const { tok } = await clientWith('era-none', [{ resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' }]);
  const denied = await post(tok, '/rcm/era', { x12: era });
  assert.equal(denied.status, 403);
  assert.match(denied.body.message, /RCM:ProcessEra on RCM:Era/);
});

// Last: switches this project to Stedi (the Go test's stand-in).
test('stedi clearinghouse: raw X12 through the egress policy, credentials in secrets', async () => {
  const p = await admin.project.update({ providers: { clearinghouse: 'stedi' } });
  assert.equal(p.providers.clearinghouse, 'stedi');
  const req = await request(coverage);
  await rejects(admin.rcm.eligibilityCheck({ eligibilityRequestId: req.id }), 400, /CLEARINGHOUSE_API_KEY is not set/);
  await admin.secret.set({ name: 'CLEARINGHOUSE_API_KEY', value: 'wrong' });
  await rejects(admin.rcm.eligibilityCheck({ eligibilityRequestId: req.id }), 400, /refused.*Unauthorized/);
  await admin.secret.set({ name: 'CLEARINGHOUSE_API_KEY', value: env('STEDI_KEY') });
  const silver = await admin.fhir.create({ resourceType: 'Coverage', status: 'active', subscriberId: 'SILVER1',
    beneficiary: { reference: `Patient/${patient.id}` }, payor: [{ reference: `Organization/${payer.id}` }] });
  const res = await admin.rcm.eligibilityCheck({ eligibilityRequestId: (await request(silver)).id });
  assert.equal(res.insurance[0].inforce, true);
  assert.ok(res.insurance[0].item.some((i) => i.name === 'Stand-in Silver'), 'the answer is not the stand-in\'s');
  const notFound = await admin.rcm.eligibilityCheck({ eligibilityRequestId: req.id }); // W123456789: the stand-in knows only SILVER1
  assert.equal(notFound.outcome, 'error');
  const claim = await admin.rcm.submitProfessionalClaim({ cms1500: form, submitterOrganizationName: 'Springfield Clinic', payerId: 'XYZ01' });
  assert.ok(claim.identifier.some((i) => i.system === 'urn:ward:clearinghouse:stedi' && i.value === 'STEDI-CORR-1'));
  assert.equal(claim.extension, undefined); // Stedi's 277CA comes later
  assert.equal(claim.meta.tag.find((t) => t.system === 'urn:ward:clearinghouse').code, 'stedi');
  // An outage: the claim is kept, the 503 names it, and it is sent again by claimId (no duplicate).
  const unlucky = { ...structuredClone(form), _26_patientAccountNumber: 'FAIL-503-1' };
  let kept;
  await assert.rejects(admin.rcm.submitProfessionalClaim({ cms1500: unlucky, submitterOrganizationName: 'Springfield Clinic', payerId: 'XYZ01' }), (e) => {
    assert.equal(e.code, 503, e.message);
    kept = /Claim\/(\S+) is stored/.exec(e.message)?.[1];
    return Boolean(kept);
  });
  const stored = await admin.fhir.get({ resourceType: 'Claim', id: kept });
  assert.ok(stored.identifier.some((i) => i.value === 'FAIL-503-1'));
  const resent = await admin.rcm.submitProfessionalClaim({ claimId: kept, submitterOrganizationName: 'Springfield Clinic' });
  assert.equal(resent.id, kept);
  assert.ok(resent.identifier.some((i) => i.system === 'urn:ward:clearinghouse:stedi'));
});
