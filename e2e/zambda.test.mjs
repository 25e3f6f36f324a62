// Zambdas end to end: the published @oystehr/sdk deploys and runs functions
// on a real `ward serve` (started by e2e/zambda_test.go, which also builds
// the code zips and passes their paths).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Oystehr from '@oystehr/sdk';
import { base, env, rejects, sdk, services, token } from './sdklib.mjs';

const projectId = env('WARD_PROJECT_ID');

const adminToken = await token(env('WARD_A_CLIENT_ID'), env('WARD_A_CLIENT_SECRET'));
const admin = sdk(adminToken);
const suffix = Math.random().toString(36).slice(2, 8);
const zip = (name) => readFileSync(env(name));
const sha = (buf) => createHash('sha256').update(buf).digest('hex');

async function deploy(fields, zipEnv) {
  const z = await admin.zambda.create(fields);
  assert.equal(z.status, 'Draft');
  assert.equal(z.fileInfo, undefined);
  const bytes = zip(zipEnv);
  await admin.zambda.uploadFile({ id: z.id, file: new Blob([bytes], { type: 'application/zip' }), filename: `${fields.name}.zip` });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const got = await admin.zambda.get({ id: z.id });
    if (got.status === 'Active') {
      assert.equal(got.fileInfo.checksum, sha(bytes));
      assert.equal(got.fileInfo.size, bytes.length);
      assert.equal(got.fileInfo.name, `${fields.name}.zip`);
      return got;
    }
    assert.notEqual(got.status, 'Failed', `activation failed: ${got.statusReason}`);
    assert.ok(Date.now() < deadline, `still ${got.status}`);
    await new Promise((r) => setTimeout(r, 50)); // polling interval, bounded by the deadline
  }
}

test('execution roles, secrets and the event, as seed 000 describes', async () => {
  const role = await admin.role.create({
    name: `zambda-reader-${suffix}`,
    accessPolicy: { rule: [{ resource: 'FHIR:Patient:*', action: ['FHIR:Search', 'FHIR:Read'], effect: 'Allow' }] },
  });
  await admin.secret.set({ name: 'GREETING', value: 'hello from a secret' });
  const fn = await deploy({ name: `probe-${suffix}`, runtime: 'nodejs20.x', executionRoleId: role.id }, 'WARD_ZIP_PROBE');
  assert.equal(fn.executionRoleId, role.id);
  assert.equal(fn.memorySize, 1024);
  assert.equal(fn.timeoutInSeconds, 27);

  const run = async () => (await admin.zambda.execute({ id: fn.id, fhirBase: `${base}/fhir`, mode: 'probe' })).output;
  let out = await run();
  assert.deepEqual(out.body, { fhirBase: `${base}/fhir`, mode: 'probe' });
  assert.equal(out.greeting, 'hello from a secret');
  assert.equal(out.auth, `Bearer ${adminToken}`);
  assert.equal(out.hasToken, true);
  assert.equal(out.search, 200, 'the role allows searching Patients');
  assert.equal(out.create, 403, 'the role does not allow creating');

  // The hidden client does not show in /m2m unless asked for, and cannot be
  // rotated or deleted by hand.
  assert.ok(!(await admin.m2m.list()).some((c) => c.executionRoleId));
  const listed = await (await fetch(`${base}/v1/m2m?includeExecutionRoleClients=true`, { headers: { authorization: `Bearer ${adminToken}` } })).json();
  const hidden = listed.find((c) => c.executionRoleId === role.id);
  assert.ok(hidden, 'the execution role client is listed when asked for');
  await rejects(admin.m2m.rotateSecret({ id: hidden.id }), 404);
  await rejects(admin.m2m.delete({ id: hidden.id }), 404);

  // Editing the role changes what the next invocation's token may do.
  await admin.role.update({ roleId: role.id, accessPolicy: { rule: [{ resource: 'FHIR:Patient:*', action: ['FHIR:Search', 'FHIR:Read', 'FHIR:Create'], effect: 'Allow' }] } });
  out = await run();
  assert.equal(out.create, 201, 'the edited role allows creating');

  // Deleting a role in use is refused, naming the zambda.
  await rejects(admin.role.delete({ roleId: role.id }), 409, new RegExp(`probe-${suffix}`));

  // No role, no token.
  const updated = await admin.zambda.update({ id: fn.id, executionRoleId: null });
  assert.equal(updated.executionRoleId, null);
  out = await run();
  assert.equal(out.hasToken, false);
  await admin.role.delete({ roleId: role.id });
});

test('execute-public serves http_open zambdas by name and refuses http_auth ones', async () => {
  const open = await deploy({ name: `open-${suffix}`, runtime: 'nodejs22.x', triggerMethod: 'http_open' }, 'WARD_ZIP_PROBE');
  const anonymous = new Oystehr({ projectId, services, retry: { retries: 0 } });
  const res = await anonymous.zambda.executePublic({ id: open.name, mode: 'echo', x: 1 });
  assert.equal(res.status, 200);
  assert.deepEqual(res.output, { mode: 'echo', x: 1 });

  const closed = await deploy({ name: `closed-${suffix}`, runtime: 'nodejs20.x' }, 'WARD_ZIP_PROBE');
  await rejects(anonymous.zambda.executePublic({ id: closed.name, mode: 'echo' }), 403, /not public/);
  await rejects(admin.zambda.create({ name: `slow-http-${suffix}`, runtime: 'nodejs20.x', timeoutInSeconds: 60 }), 400, /at most 27/);
  await rejects(admin.zambda.create({ name: `bad name ${suffix}`, runtime: 'nodejs20.x' }), 400, /A-Z a-z 0-9/);
  await rejects(admin.zambda.create({ name: `py-${suffix}`, runtime: 'python3.13' }), 400, /not available/);
  await rejects(admin.zambda.create({ name: `open-${suffix}`, runtime: 'nodejs20.x' }), 409, /already exists/);
});

test('failures are distinct and clear, and the next invocation works', async () => {
  const fn = await deploy({ name: `faulty-${suffix}`, runtime: 'nodejs20.x', memorySize: 128, timeoutInSeconds: 2 }, 'WARD_ZIP_PROBE');
  // Running out of memory gets its own function with room to do so: near
  // its limit V8 collects for seconds before it gives up, and on a loaded
  // machine 2 s ran out first (a timeout, 4212, in CI).
  const roomy = await deploy({ name: `faulty-oom-${suffix}`, runtime: 'nodejs20.x', memorySize: 128, timeoutInSeconds: 20 }, 'WARD_ZIP_PROBE');
  // Ward's failure codes (output.code; the HTTP status is 500, 502, 504 or
  // 413): distinct from HTTP statuses so the SDK does not retry a run.
  const cases = [
    ['throw', 4210, /threw.*boom/],
    ['crash', 4211, /exit/i],
    ['hang', 4212, /timed out after 2 s/],
    ['oom', 4213, /memory/i, roomy],
    ['big', 4214, /6 MiB/],
  ];
  for (const [mode, code, message, target = fn] of cases) {
    await rejects(admin.zambda.execute({ id: target.id, mode }), code, message);
    const ok = await admin.zambda.execute({ id: target.id, mode: 'echo', after: mode });
    assert.deepEqual(ok.output, { mode: 'echo', after: mode }, `works again after ${mode}`);
  }
  // A handler's own error status and body reach the caller.
  await rejects(admin.zambda.execute({ id: fn.id, mode: 'teapot' }), 418, /short and stout/);
});

test('logs: streams, search and paging', async () => {
  const fn = await deploy({ name: `logger-${suffix}`, runtime: 'nodejs20.x' }, 'WARD_ZIP_PROBE');
  await admin.zambda.execute({ id: fn.id, mode: 'log', line: `needle-${suffix}` });
  await admin.zambda.execute({ id: fn.id, mode: 'echo' });
  // Logs are stored just after the answer: poll briefly.
  let logStreams = [];
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    ({ logStreams } = await admin.zambdaLogStream.list({ id: fn.id }));
    const hits = await admin.zambdaLogStream.search({ id: fn.id, filter: 'REPORT' });
    if (logStreams.length >= 1 && hits.logEvents.length >= 2) break;
  }
  assert.ok(logStreams.length >= 1);
  assert.match(logStreams[0].logStreamName, /^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\]/);
  const found = await admin.zambdaLogStream.search({ id: fn.id, filter: `needle-${suffix}` });
  assert.equal(found.logEvents.length, 1);
  assert.match(found.logEvents[0].message, new RegExp(`needle-${suffix}`));
  const all = await admin.zambdaLogStream.get({ id: fn.id, logStreamName: logStreams[0].logStreamName });
  const messages = all.logEvents.map((e) => e.message);
  assert.ok(messages.some((m) => m.startsWith('START RequestId:')));
  assert.ok(messages.some((m) => m.startsWith('REPORT RequestId:')));
  const next = await admin.zambdaLogStream.get({ id: fn.id, logStreamName: logStreams[0].logStreamName, nextToken: all.nextForwardToken });
  assert.equal(next.logEvents.length, 0, 'nothing after the last line yet');
});

test('a Go function built with aws-lambda-go runs as provided.al2023', async () => {
  const fn = await deploy({ name: `golang-${suffix}`, runtime: 'provided.al2023' }, 'WARD_ZIP_GO');
  const res = await admin.zambda.execute({ id: fn.id, hello: 'go' });
  assert.equal(res.status, 200);
  assert.deepEqual(res.output.echo, { hello: 'go' });
  assert.equal(res.output.runtime, 'go');
});

test('a secret with an empty value keeps its value: "" (the SDK types it as a required string)', async () => {
  const name = `EMPTY_${suffix}`;
  assert.deepEqual(await admin.secret.set({ name, value: '' }), { name, value: '' });
  assert.deepEqual(await admin.secret.get({ name }), { name, value: '' });
  const listed = (await admin.secret.list()).find((s) => s.name === name);
  assert.deepEqual(listed, { name }, 'the list shows names only');
  await admin.secret.delete({ name });
});

test("a cron schedule's retry policy in the SDK's names, EventBridge's as aliases, and unknown fields refused", async () => {
  const schedule = { expression: 'rate(5 minutes)', retryPolicy: { maximumRetry: 2, maximumEventAge: 3600 } };
  // Never given code, so it stays Draft and never ticks.
  const fn = await admin.zambda.create({ name: `cron-${suffix}`, runtime: 'nodejs20.x', triggerMethod: 'cron', schedule });
  assert.deepEqual(fn.schedule, schedule);
  assert.deepEqual((await admin.zambda.get({ id: fn.id })).schedule, schedule);

  const aliased = { expression: 'rate(5 minutes)', retryPolicy: { maximumRetryAttempts: 1, maximumEventAgeInSeconds: 60 } };
  const updated = await admin.zambda.update({ id: fn.id, schedule: aliased });
  assert.deepEqual(updated.schedule.retryPolicy, { maximumRetry: 1, maximumEventAge: 60 });

  const refused = [
    [{ expression: 'rate(5 minutes)', retryPolicy: { maximumRetries: 2 } }, /retryPolicy: unknown field "maximumRetries"/],
    [{ expression: 'rate(5 minutes)', timezone: 'UTC' }, /schedule: unknown field "timezone"/],
    [{ expression: 'rate(5 minutes)', retryPolicy: { maximumRetry: 186 } }, /maximumRetry must be a whole number from 0 to 185/],
    [{ expression: 'rate(5 minutes)', retryPolicy: { maximumEventAge: 30 } }, /maximumEventAge must be a whole number from 60 to 86400/],
  ];
  for (const [bad, message] of refused) {
    await rejects(admin.zambda.update({ id: fn.id, schedule: bad }), 400, message);
  }
  assert.deepEqual((await admin.zambda.get({ id: fn.id })).schedule.retryPolicy, { maximumRetry: 1, maximumEventAge: 60 }, 'a refused update changes nothing');
  await admin.zambda.delete({ id: fn.id });
});
