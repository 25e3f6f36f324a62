// Payments end to end: the published @oystehr/sdk's paymentMethod (setUp, list, setDefault,
// delete) and charge (issue, status) against a real `ward serve` (started by
// e2e/payments_test.go), configured from admin-credentials.json alone. First the local provider,
// then Stripe: a real stripe-mock behind a counter (in the Go test) that records each
// PaymentIntent creation and its Idempotency-Key. stripe-mock is stateless (fixtures): it never
// remembers a default card and its PaymentIntents stay unsettled, so the Stripe part settles the
// charge with a signed webhook, as Stripe would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { env, base, token, sdk, rejects, adminCredentials, sdkFromCredentials, foreignRequests, m2mToken } from './sdklib.mjs';

const creds = adminCredentials();
const admin = sdkFromCredentials(creds, await token(creds.clientId, creds.clientSecret));
const adminB = sdk(await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET')));
const counter = env('STRIPE_COUNTER');

async function visit(prices) {
  const patient = await admin.fhir.create({ resourceType: 'Patient', name: [{ family: 'Payer' }] });
  const encounter = await admin.fhir.create({ resourceType: 'Encounter', status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${patient.id}` } });
  for (const [value, status] of prices) {
    await admin.fhir.create({ resourceType: 'ChargeItem', status: status ?? 'billable', code: { text: 'visit' },
      subject: { reference: `Patient/${patient.id}` }, context: { reference: `Encounter/${encounter.id}` },
      priceOverride: { value, currency: 'USD' } });
  }
  return { patient, encounter };
}

// A client holding only the rules given.
const clientWith = async (name, rule) => sdk(await m2mToken(admin, name, rule));

const reconciliations = async (id) => (await admin.fhir.search({ resourceType: 'PaymentReconciliation',
  params: [{ name: '_id', value: id }] })).unbundle();

test('local provider: set up cards, choose the default, charge once, status', async () => {
  const { patient, encounter } = await visit([[12.5], [7.5], [100, 'not-billable']]);
  const ids = { beneficiaryPatientId: patient.id };
  assert.deepEqual(await admin.paymentMethod.list(ids), { cards: [] });
  const { clientSecret } = await admin.paymentMethod.setUp(ids);
  assert.match(clientSecret, /^seti_local_\w+_secret_local$/);
  await admin.paymentMethod.setUp(ids);
  const { cards, default: def } = await admin.paymentMethod.list(ids);
  assert.equal(cards.length, 2);
  assert.deepEqual(def, cards[0], 'the first card is the default');
  assert.deepEqual(Object.keys(def).sort(), ['brand', 'exp_month', 'exp_year', 'id', 'last_four']);
  assert.equal(def.last_four, '4242');
  await admin.paymentMethod.setDefault({ ...ids, paymentMethodId: cards[1].id });
  assert.equal((await admin.paymentMethod.list(ids)).default.id, cards[1].id);
  await rejects(admin.paymentMethod.setDefault({ ...ids, paymentMethodId: 'pm_not_theirs' }), 404);

  // The customer is kept on an Account (guarantor: the payor) and reused.
  const accounts = (await admin.fhir.search({ resourceType: 'Account', params: [{ name: 'subject', value: `Patient/${patient.id}` }] })).unbundle();
  assert.equal(accounts.length, 1);
  assert.equal(accounts[0].identifier[0].system, 'urn:ward:payment:customer:local');
  assert.equal(accounts[0].guarantor[0].party.reference, `Patient/${patient.id}`);

  await admin.charge.issue({ encounterId: encounter.id });
  const status = await admin.charge.status({ encounterId: encounter.id });
  assert.equal(status.amount, 20);
  assert.equal(status.currency, 'usd');
  assert.equal(status.status, 'succeeded');
  assert.deepEqual(status.card, { id: cards[1].id, brand: 'visa', expirationMonth: 12, expirationYear: cards[1].exp_year, lastFour: '4242' });
  const [rec] = await reconciliations(status.chargeUuid);
  assert.equal(rec.outcome, 'complete');
  assert.deepEqual(rec.paymentAmount, { value: 20, currency: 'USD' });
  assert.match(rec.paymentIdentifier.value, /^pi_local_/);
  assert.equal(rec.detail.length, 2, 'one detail per billable ChargeItem');

  // A retry is the same charge: no second PaymentReconciliation.
  await admin.charge.issue({ encounterId: encounter.id });
  await Promise.all([1, 2, 3].map(() => admin.charge.issue({ encounterId: encounter.id })));
  assert.equal((await admin.charge.status({ encounterId: encounter.id })).chargeUuid, status.chargeUuid);
  const all = (await admin.fhir.search({ resourceType: 'PaymentReconciliation', params: [{ name: 'identifier', value: rec.identifier[0].value }] })).unbundle();
  assert.equal(all.length, 1);
  // A new total after a charge is not charged again.
  await admin.fhir.create({ resourceType: 'ChargeItem', status: 'billable', code: { text: 'extra' }, subject: { reference: `Patient/${patient.id}` },
    context: { reference: `Encounter/${encounter.id}` }, priceOverride: { value: 5, currency: 'USD' } });
  await rejects(admin.charge.issue({ encounterId: encounter.id }), 409, /charged already/);

  await admin.paymentMethod.delete({ ...ids, paymentMethodId: cards[0].id });
  assert.deepEqual((await admin.paymentMethod.list(ids)).cards.map((c) => c.id), [cards[1].id]);
  await rejects(admin.paymentMethod.delete({ ...ids, paymentMethodId: cards[0].id }), 404);
});

test('bad input is a clear 4xx', async () => {
  const { patient, encounter } = await visit([]);
  await rejects(admin.charge.issue({}), 400, /encounterId/);
  await rejects(admin.charge.issue({ encounterId: encounter.id }), 400, /nothing to charge/);
  await rejects(admin.charge.status({ encounterId: encounter.id }), 404, /no charge/);
  await rejects(admin.charge.issue({ encounterId: 'no-such-encounter' }), 404);
  await rejects(admin.paymentMethod.setUp({ beneficiaryPatientId: 'no-such-patient' }), 404);
  await rejects(admin.paymentMethod.setUp({ beneficiaryPatientId: 'a/../b' }), 400);
  const priced = await visit([[10]]);
  await rejects(admin.charge.issue({ encounterId: priced.encounter.id }), 400, /no payment method set up/);
  assert.ok(patient.id);
});

test('authorization: the seed\'s actions, projects apart', async () => {
  const { patient, encounter } = await visit([[3]]);
  const none = await clientWith('pay-none', [{ resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' }]);
  await rejects(none.paymentMethod.setUp({ beneficiaryPatientId: patient.id }), 403, /Payment:Setup on Payment:PaymentMethod/);
  await rejects(none.paymentMethod.list({ beneficiaryPatientId: patient.id }), 403, /Payment:List/);
  await rejects(none.charge.issue({ encounterId: encounter.id }), 403, /Payment:Issue on Payment:Charge/);
  await rejects(none.charge.status({ encounterId: encounter.id }), 403, /Payment:Status/);
  // Payment actions without the FHIR writes the charge records: refused, nothing charged.
  const noFHIR = await clientWith('pay-nofhir', [
    { resource: 'Payment:*', action: ['Payment:*'], effect: 'Allow' },
    { resource: 'FHIR:Patient:*', action: ['FHIR:Read'], effect: 'Allow' },
  ]);
  await rejects(noFHIR.paymentMethod.setUp({ beneficiaryPatientId: patient.id }), 403);
  // Another project's patient and encounter do not exist there.
  await rejects(adminB.paymentMethod.setUp({ beneficiaryPatientId: patient.id }), 404);
  await rejects(adminB.charge.issue({ encounterId: encounter.id }), 404);
  await rejects(adminB.charge.status({ encounterId: encounter.id }), 404);
});

// refund is Ward's POST /v1/payment/charge/refund (not in SDK 4.2.6): {status, body}.
const adminToken = await token(creds.clientId, creds.clientSecret);
async function refund(body, { key, tok = adminToken } = {}) {
  const res = await fetch(`${base}/v1/payment/charge/refund`, { method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}`, ...(key ? { 'idempotency-key': key } : {}) } });
  return { status: res.status, body: await res.json() };
}

const chargeItemsOf = async (encounter) => (await admin.fhir.search({ resourceType: 'ChargeItem',
  params: [{ name: 'context', value: `Encounter/${encounter.id}` }] })).unbundle();

async function invoiceFor(client, patient, encounter, status, components, extra = {}) {
  const lineItem = (await chargeItemsOf(encounter)).map((ci, i) => ({ chargeItemReference: { reference: `ChargeItem/${ci.id}` },
    priceComponent: i === 0 ? components : [] }));
  return client.fhir.create({ resourceType: 'Invoice', status, subject: { reference: `Patient/${patient.id}` }, lineItem, ...extra });
}

test('local provider: the Invoice is the bill, balanced when paid; refunds never exceed the charge', async () => {
  const { patient, encounter } = await visit([[60], [40]]);
  await admin.paymentMethod.setUp({ beneficiaryPatientId: patient.id });
  const usd = (value) => ({ value, currency: 'USD' });
  await invoiceFor(admin, patient, encounter, 'cancelled', [{ type: 'base', amount: usd(1) }], { cancelledReason: 'wrong' });
  const inv = await invoiceFor(admin, patient, encounter, 'issued', [{ type: 'base', amount: usd(100) }, { type: 'discount', amount: usd(20) }]);
  await admin.charge.issue({ encounterId: encounter.id });
  await admin.charge.issue({ encounterId: encounter.id }); // a retry
  const st = await admin.charge.status({ encounterId: encounter.id });
  assert.equal(st.amount, 80, 'the Invoice (100 - 20 discount), not the ChargeItems (100)');
  assert.equal((await admin.fhir.get({ resourceType: 'Invoice', id: inv.id })).status, 'balanced');
  const [rec] = await reconciliations(st.chargeUuid);
  assert.deepEqual(rec.detail.map((d) => d.request.reference), [`Invoice/${inv.id}`]);

  // Refunds: partial, retried, a second of the same amount with its own key, the rest.
  const r1 = await refund({ encounterId: encounter.id, amount: 30 });
  assert.equal(r1.status, 200, JSON.stringify(r1.body));
  assert.deepEqual({ ...r1.body, refundUuid: undefined }, { refundUuid: undefined, chargeUuid: st.chargeUuid, amount: 30, currency: 'usd', status: 'succeeded' });
  assert.deepEqual((await refund({ encounterId: encounter.id, amount: 30 })).body, r1.body, 'a retry is the same refund');
  const r2 = await refund({ encounterId: encounter.id, amount: 30 }, { key: 'second-30' });
  assert.notEqual(r2.body.refundUuid, r1.body.refundUuid);
  const over = await refund({ encounterId: encounter.id, amount: 30 }, { key: 'third-30' });
  assert.equal(over.status, 400);
  assert.match(over.body.message, /more than is left/);
  for (const amount of [-5, 0, 'ten', 1e12]) {
    assert.equal((await refund({ encounterId: encounter.id, amount }, { key: `bad-${amount}` })).status, 400, `amount ${amount}`);
  }
  const rest = await refund({ encounterId: encounter.id });
  assert.equal(rest.body.amount, 20);
  const [negative] = await reconciliations(rest.body.refundUuid);
  assert.deepEqual(negative.paymentAmount, { value: -20, currency: 'USD' });
  assert.equal(negative.detail[0].request.reference, `PaymentReconciliation/${st.chargeUuid}`);
  assert.equal(negative.outcome, 'complete');
  assert.equal((await refund({ encounterId: encounter.id }, { key: 'more' })).status, 400, 'nothing left');

  // Another project: the Encounter does not exist there; its Invoices are its own.
  const tokB = await token(env('WARD_B_CLIENT_ID'), env('WARD_B_CLIENT_SECRET'));
  assert.equal((await refund({ encounterId: encounter.id, amount: 1 }, { tok: tokB })).status, 404);
  // Without Payment:Issue (the action refunds take): 403 naming it.
  const role = await admin.role.create({ name: 'refund-none', accessPolicy: { rule: [{ resource: 'FHIR:*', action: ['FHIR:*'], effect: 'Allow' }] } });
  const m2m = await admin.m2m.create({ name: 'refund-none', roles: [role.id] });
  const { secret } = await admin.m2m.rotateSecret({ id: m2m.id });
  const denied = await refund({ encounterId: encounter.id }, { tok: await token(m2m.clientId, secret) });
  assert.equal(denied.status, 403);
  assert.match(denied.body.message, /Payment:Issue on Payment:Charge/);
});

test('invoices: hostile and ambiguous bills are refused', async () => {
  const usd = (value) => ({ value, currency: 'USD' });
  // Another project's Invoice naming this project's ChargeItems is not seen.
  const a = await visit([[10]]);
  await admin.paymentMethod.setUp({ beneficiaryPatientId: a.patient.id });
  const ci = await chargeItemsOf(a.encounter);
  await adminB.fhir.create({ resourceType: 'Invoice', status: 'issued', subject: { reference: `Patient/${a.patient.id}` },
    lineItem: [{ chargeItemReference: { reference: `ChargeItem/${ci[0].id}` } }], totalGross: usd(9999) }).catch(() => {});
  await admin.charge.issue({ encounterId: a.encounter.id });
  assert.equal((await admin.charge.status({ encounterId: a.encounter.id })).amount, 10);

  const mixed = await visit([[10]]);
  await admin.paymentMethod.setUp({ beneficiaryPatientId: mixed.patient.id });
  await invoiceFor(admin, mixed.patient, mixed.encounter, 'issued', [{ type: 'base', amount: usd(10) }, { type: 'surcharge', amount: { value: 1, currency: 'EUR' } }]);
  await rejects(admin.charge.issue({ encounterId: mixed.encounter.id }), 400, /one charge has one currency/);

  const neg = await visit([[10]]);
  await admin.paymentMethod.setUp({ beneficiaryPatientId: neg.patient.id });
  await invoiceFor(admin, neg.patient, neg.encounter, 'issued', [{ type: 'base', amount: usd(10) }, { type: 'discount', amount: usd(-50) }]);
  await rejects(admin.charge.issue({ encounterId: neg.encounter.id }), 400, /must be positive/);

  const draft = await visit([[10]]);
  await admin.paymentMethod.setUp({ beneficiaryPatientId: draft.patient.id });
  await invoiceFor(admin, draft.patient, draft.encounter, 'draft', [{ type: 'base', amount: usd(10) }]);
  await rejects(admin.charge.issue({ encounterId: draft.encounter.id }), 400, /draft/);
});

// sign makes a Stripe-Signature header as Stripe does (t=..., v1=HMAC-SHA256 of "t.payload").
const sign = (secret, payload, t = Math.floor(Date.now() / 1000)) =>
  `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${payload}`).digest('hex')}`;

test('stripe provider: stripe-mock, one PaymentIntent per charge however retried, signed webhooks', async () => {
  await rejects(admin.project.update({ providers: { payment: 'paypal' } }), 400, /no provider "paypal"/);
  assert.deepEqual((await admin.project.update({ providers: { payment: 'stripe' } })).providers, { payment: 'stripe' });
  const { patient, encounter } = await visit([[40], [2.25]]);
  const ids = { beneficiaryPatientId: patient.id };
  await rejects(admin.paymentMethod.setUp(ids), 400, /STRIPE_SECRET_KEY/);
  await admin.secret.set({ name: 'STRIPE_SECRET_KEY', value: 'sk_test_WardE2ETest123' });

  const { clientSecret } = await admin.paymentMethod.setUp(ids);
  assert.match(clientSecret, /^seti_\w+_secret_\w+$/, 'a SetupIntent client secret');
  const [acct] = (await admin.fhir.search({ resourceType: 'Account', params: [{ name: 'subject', value: `Patient/${patient.id}` }] })).unbundle();
  const customer = acct.identifier.find((i) => i.system === 'urn:ward:payment:customer:stripe').value;
  assert.match(customer, /^cus_/);
  await admin.paymentMethod.setUp(ids); // reuses the customer
  const [again] = (await admin.fhir.search({ resourceType: 'Account', params: [{ name: 'subject', value: `Patient/${patient.id}` }] })).unbundle();
  assert.equal(again.identifier.length, 1);

  const { cards } = await admin.paymentMethod.list(ids);
  assert.equal(cards.length, 1, 'stripe-mock lists one card');
  assert.match(cards[0].id, /^pm_/);
  assert.equal(cards[0].brand, 'visa');
  await admin.paymentMethod.setDefault({ ...ids, paymentMethodId: cards[0].id });
  await rejects(admin.paymentMethod.setDefault({ ...ids, paymentMethodId: 'pm_someone_elses' }), 404);

  // Retried and concurrent: one PaymentIntent (counted between Ward and stripe-mock).
  const before = (await (await fetch(`${counter}/_intents`)).json()).keys.length;
  await admin.charge.issue({ encounterId: encounter.id });
  await admin.charge.issue({ encounterId: encounter.id });
  await Promise.all([1, 2, 3].map(() => admin.charge.issue({ encounterId: encounter.id })));
  const keys = (await (await fetch(`${counter}/_intents`)).json()).keys;
  assert.equal(keys.length - before, 1, `PaymentIntents created: ${keys.length - before}`);
  const st = await admin.charge.status({ encounterId: encounter.id });
  assert.equal(st.amount, 42.25);
  assert.equal(st.status, 'processing', 'stripe-mock leaves it unsettled: the webhook settles it');
  const [rec] = await reconciliations(st.chargeUuid);
  assert.equal(rec.outcome, 'queued');
  const pi = rec.paymentIdentifier.value;
  assert.match(pi, /^pi_/);

  // Webhooks: the signature is the credential.
  const me = await admin.project.get();
  const hook = `${base}/v1/payment/stripe/webhook/${me.id}`;
  const event = JSON.stringify({ id: 'evt_1', object: 'event', type: 'payment_intent.succeeded', api_version: '2024-06-20',
    data: { object: { id: pi, object: 'payment_intent', status: 'succeeded' } } });
  const post = (url, body, sig) => fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...(sig ? { 'stripe-signature': sig } : {}) } });
  assert.equal((await post(hook, event, sign('whsec_unset', event))).status, 403, 'no webhook secret set');
  await admin.secret.set({ name: 'STRIPE_WEBHOOK_SECRET', value: 'whsec_ward_e2e' });
  for (const [url, sig] of [
    [hook, sign('whsec_wrong', event)],
    [hook, undefined],
    [hook, sign('whsec_ward_e2e', event, Math.floor(Date.now() / 1000) - 3600)], // replayed an hour later
    [hook, sign('whsec_ward_e2e', event.replace('succeeded', 'canceled'))], // signed other bytes
    [`${base}/v1/payment/stripe/webhook/not-a-project`, sign('whsec_ward_e2e', event)],
  ]) {
    const res = await post(url, event, sig);
    assert.equal(res.status, 403, `${url} ${sig}: ${await res.text()}`);
  }
  assert.equal((await admin.charge.status({ encounterId: encounter.id })).status, 'processing', 'forged webhooks change nothing');
  const ok = await post(hook, event, sign('whsec_ward_e2e', event));
  assert.equal(ok.status, 200, await ok.text());
  assert.equal((await admin.charge.status({ encounterId: encounter.id })).status, 'succeeded');
  assert.equal((await reconciliations(st.chargeUuid))[0].outcome, 'complete');

  // A refund goes to Stripe once however retried; more than is left never leaves Ward.
  const rf = await refund({ encounterId: encounter.id, amount: 10 });
  assert.equal(rf.status, 200, JSON.stringify(rf.body));
  assert.equal(rf.body.status, 'succeeded', 'stripe-mock answers a succeeded Refund');
  assert.deepEqual((await refund({ encounterId: encounter.id, amount: 10 })).body, rf.body);
  assert.equal((await refund({ encounterId: encounter.id, amount: 40 }, { key: 'too-much' })).status, 400);
  const refunds = (await (await fetch(`${counter}/_refunds`)).json()).keys;
  assert.equal(refunds.length, 1, `Refunds created: ${refunds.length}`);
  const [rrec] = await reconciliations(rf.body.refundUuid);
  assert.deepEqual(rrec.paymentAmount, { value: -10, currency: 'USD' });
  const reID = rrec.paymentIdentifier.value;
  assert.match(reID, /^re_/);
  // Stripe later says the refund failed: the record follows.
  const refundFailed = JSON.stringify({ id: 'evt_r', object: 'event', type: 'refund.failed', api_version: '2024-06-20',
    data: { object: { id: reID, object: 'refund', status: 'failed', failure_reason: 'expired_or_canceled_card' } } });
  assert.equal((await post(hook, refundFailed, sign('whsec_ward_e2e', refundFailed))).status, 200);
  assert.equal((await reconciliations(rf.body.refundUuid))[0].outcome, 'error');

  // An Invoice charged on Stripe is balanced when the webhook says the PaymentIntent succeeded.
  const billed = await visit([[30]]);
  await admin.paymentMethod.setUp({ beneficiaryPatientId: billed.patient.id });
  const inv = await invoiceFor(admin, billed.patient, billed.encounter, 'issued', [], { totalGross: { value: 25, currency: 'USD' } });
  await admin.charge.issue({ encounterId: billed.encounter.id });
  const bst = await admin.charge.status({ encounterId: billed.encounter.id });
  assert.equal(bst.amount, 25);
  assert.equal((await admin.fhir.get({ resourceType: 'Invoice', id: inv.id })).status, 'issued', 'not paid yet');
  const billedEvent = JSON.stringify({ id: 'evt_3', object: 'event', type: 'payment_intent.succeeded', api_version: '2024-06-20',
    data: { object: { id: (await reconciliations(bst.chargeUuid))[0].paymentIdentifier.value, object: 'payment_intent', status: 'succeeded' } } });
  assert.equal((await post(hook, billedEvent, sign('whsec_ward_e2e', billedEvent))).status, 200);
  assert.equal((await admin.fhir.get({ resourceType: 'Invoice', id: inv.id })).status, 'balanced');

  // Another encounter: a second PaymentIntent with its own key.
  const second = await visit([[9.99]]);
  await admin.paymentMethod.setUp({ beneficiaryPatientId: second.patient.id });
  await admin.charge.issue({ encounterId: second.encounter.id });
  const failed = JSON.stringify({ id: 'evt_2', object: 'event', type: 'payment_intent.payment_failed', api_version: '2024-06-20',
    data: { object: { id: (await reconciliations((await admin.charge.status({ encounterId: second.encounter.id })).chargeUuid))[0].paymentIdentifier.value,
      object: 'payment_intent', status: 'requires_payment_method', last_payment_error: { message: 'Your card was declined.' } } } });
  assert.equal((await post(hook, failed, sign('whsec_ward_e2e', failed))).status, 200);
  const st2 = await admin.charge.status({ encounterId: second.encounter.id });
  assert.equal(st2.status, 'failed');
  const [rec2] = await reconciliations(st2.chargeUuid);
  assert.equal(rec2.outcome, 'error');
  assert.match(rec2.disposition, /declined/);

  await admin.paymentMethod.delete({ ...ids, paymentMethodId: cards[0].id });
  assert.deepEqual(foreignRequests, [], 'the SDK never left Ward');
  assert.deepEqual((await admin.project.update({ providers: { payment: null } })).providers, {});
});
