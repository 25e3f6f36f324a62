// Terminology end to end: the published @oystehr/sdk's terminology client and FHIR client
// against a real `ward serve` (started by e2e/terminology_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Oystehr from '@oystehr/sdk';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through e2e/terminology_test.go`);
  return v;
};
const base = env('WARD_URL');

async function token(clientId, clientSecret) {
  const res = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
  });
  assert.equal(res.status, 200);
  return (await res.json()).access_token;
}
// Every service URL points at Ward: terminologyApiUrl is the Project API's base.
const sdk = (accessToken) =>
  new Oystehr({
    accessToken,
    services: { projectApiUrl: `${base}/v1`, fhirApiUrl: `${base}/fhir`, terminologyApiUrl: `${base}/v1` },
    retry: { retries: 0 },
  });

async function rejects(promise, code, messagePart) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `want code ${code}, got ${err.code}: ${err.message}`);
    if (messagePart) assert.match(String(err.message), messagePart);
    return true;
  });
}

const tokenA = await token(env('WARD_A_CLIENT_ID'), env('WARD_A_CLIENT_SECRET'));
const admin = sdk(tokenA);
const adminB = sdk(await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET')));

const cpt = {
  resourceType: 'CodeSystem', url: 'http://www.ama-assn.org/go/cpt', status: 'active', content: 'fragment',
  concept: [
    { code: '99213', display: 'Office or other outpatient visit, established patient, low complexity' },
    { code: '99214', display: 'Office or other outpatient visit, established patient, moderate complexity' },
    { code: '99215', display: 'Office or other outpatient visit, established patient, high complexity' },
    { code: '71045', display: 'Radiologic examination, chest; single view' },
  ],
};
const hcpcs = {
  resourceType: 'CodeSystem', url: 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', status: 'active', content: 'fragment',
  concept: [
    { code: 'G0008', display: 'Administration of influenza virus vaccine' },
    { code: 'J1100', display: 'Injection, dexamethasone sodium phosphate, 1 mg' },
  ],
};

test('searchCpt and searchHcpcs answer from the project\'s own code systems', async () => {
  await rejects(admin.terminology.searchCpt({ query: '99213' }), 404, /CodeSystem/);
  await admin.fhir.create(cpt);
  await admin.fhir.create(hcpcs);

  const r = await admin.terminology.searchCpt({ query: '9921' });
  assert.deepEqual(r.codes.map((c) => c.code), ['99213', '99214', '99215']);
  assert.equal(r.codes[0].display, cpt.concept[0].display);
  assert.equal(r.metadata.nextCursor, null);

  // Paging with the cursor the answer gives.
  const p1 = await admin.terminology.searchCpt({ query: 'outpatient visit', limit: 2 });
  assert.deepEqual(p1.codes.map((c) => c.code), ['99213', '99214']);
  assert.ok(p1.metadata.nextCursor);
  const p2 = await admin.terminology.searchCpt({ query: 'outpatient visit', limit: 2, cursor: p1.metadata.nextCursor });
  assert.deepEqual(p2.codes.map((c) => c.code), ['99215']);
  assert.equal(p2.metadata.nextCursor, null);

  assert.deepEqual((await admin.terminology.searchCpt({ query: 'chest', searchType: 'code' })).codes, []);
  assert.deepEqual((await admin.terminology.searchCpt({ query: 'chest', searchType: 'description' })).codes.map((c) => c.code), ['71045']);
  assert.deepEqual((await admin.terminology.searchCpt({ query: '9921', strictMatch: true })).codes, []);
  assert.deepEqual((await admin.terminology.searchHcpcs({ query: 'influenza' })).codes.map((c) => c.code), ['G0008']);

  await rejects(admin.terminology.searchCpt({ query: '' }), 400, /query/);
  await rejects(admin.terminology.searchCpt({ query: 'x', limit: 1000 }), 400, /limit/);
  await rejects(admin.terminology.searchCpt({ query: 'x', searchType: 'sql' }), 400, /searchType/);
  await rejects(admin.terminology.searchCpt({ query: 'x', cursor: 'forged' }), 400, /cursor/);

  // Another project sees none of them.
  await rejects(adminB.terminology.searchCpt({ query: '99213' }), 404);
});

test('the policy gate names Terminology:SearchCodes', async () => {
  const role = await admin.role.create({ name: `fhir-only-${Date.now()}`, accessPolicy: { rule: [{ resource: ['FHIR:*'], action: ['FHIR:*'], effect: 'Allow' }] } });
  const client = await admin.m2m.create({ name: `fhir-only-${Date.now()}`, roles: [role.id] });
  const { secret } = await admin.m2m.rotateSecret({ id: client.id });
  const limited = sdk(await token(client.clientId, secret));
  await rejects(limited.terminology.searchCpt({ query: '99213' }), 403, /Terminology:SearchCodes/);
});

test('required bindings: a bogus code is refused with the value set named', async () => {
  await rejects(admin.fhir.create({ resourceType: 'Patient', gender: 'bogus' }), 400, /administrative-gender/);
  await rejects(admin.fhir.create({ resourceType: 'Observation', status: 'bogus', code: { text: 'x' } }), 400, /observation-status/);
  const res = await admin.fhir.transaction({ requests: [{ method: 'POST', url: '/Patient', resource: { resourceType: 'Patient', gender: 'bogus' } }] }).catch((e) => e);
  assert.equal(res.code, 400);
  const ok = await admin.fhir.create({ resourceType: 'Patient', gender: 'female' });
  assert.equal(ok.gender, 'female');
});

test('FHIR terminology operations over HTTP', async () => {
  const get = async (path) => {
    const res = await fetch(`${base}/fhir/${path}`, { headers: { authorization: `Bearer ${tokenA}` } });
    return [res.status, await res.json()];
  };
  let [status, vs] = await get('ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender&filter=fe');
  assert.equal(status, 200);
  assert.deepEqual(vs.expansion.contains.map((c) => c.code), ['female']);
  let [, out] = await get('CodeSystem/$lookup?system=http://www.ama-assn.org/go/cpt&code=99214');
  assert.match(JSON.stringify(out), /moderate complexity/);
  [, out] = await get('CodeSystem/$validate-code?url=http://www.ama-assn.org/go/cpt&code=99215');
  assert.equal(out.parameter.find((p) => p.name === 'result').valueBoolean, true);
  // The extract is a fragment of CPT: a code it lacks may still be CPT's, so no answer.
  [status, out] = await get('CodeSystem/$validate-code?url=http://www.ama-assn.org/go/cpt&code=00000');
  assert.equal(status, 422, JSON.stringify(out));
  [, out] = await get('CodeSystem/$validate-code?url=http://hl7.org/fhir/administrative-gender&code=bogus');
  assert.equal(out.parameter.find((p) => p.name === 'result').valueBoolean, false);
  [status] = await get('CodeSystem/$subsumes?system=http://terminology.hl7.org/CodeSystem/v3-ActCode&codeA=_ActEncounterCode&codeB=AMB');
  assert.equal(status, 200);
});
