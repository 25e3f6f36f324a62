// Z3 end to end: the published @oystehr/sdk's z3 client (and its bare-fetch
// uploads to presigned URLs) against a real `ward serve` (started by
// e2e/z3_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { base, env, rejects, sdk, token } from './sdklib.mjs';


const admin = sdk(await token(env('WARD_A_CLIENT_ID'), env('WARD_A_CLIENT_SECRET')));
const suffix = Math.random().toString(36).slice(2, 8);
const sha = (buf) => createHash('sha256').update(Buffer.from(buf)).digest('hex');
const keys = (list) => list.map((o) => o.key).sort();

test('buckets: create, list, refuse bad names and duplicates, delete only when empty', async () => {
  const name = `e2e-buckets-${suffix}`;
  const b = await admin.z3.createBucket({ bucketName: name });
  assert.equal(b.name, name);
  assert.ok(b.id);
  const all = await admin.z3.listBuckets();
  const mine = all.find((x) => x.name === name);
  assert.ok(mine, 'the new bucket is listed');
  assert.ok(!Number.isNaN(Date.parse(mine.creationDate)));
  await rejects(admin.z3.createBucket({ bucketName: name }), 409, /already exists/);
  await rejects(admin.z3.createBucket({ bucketName: 'a..b' }), 400, /two dots/);
  await rejects(admin.z3.createBucket({ bucketName: '_zambda-code' }), 400, /reserved for Ward/);
  await rejects(admin.z3.createBucket({ bucketName: 'x'.repeat(256) }), 400, /1-255 characters/);

  await admin.z3.uploadFile({ bucketName: name, 'objectPath+': 'keep.txt', file: new Blob(['x']) });
  await rejects(admin.z3.deleteBucket({ bucketName: name }), 409, /not empty/);
  await admin.z3.deleteObject({ bucketName: name, 'objectPath+': 'keep.txt' });
  await admin.z3.deleteBucket({ bucketName: name });
  assert.ok(!(await admin.z3.listBuckets()).some((x) => x.name === name));
  await rejects(admin.z3.deleteBucket({ bucketName: name }), 404);
});

test('objects: upload, list, download the same bytes, delete a file and a folder', async () => {
  const bucketName = `e2e-objects-${suffix}`;
  await admin.z3.createBucket({ bucketName });
  const bytes = randomBytes(100_000);
  const files = {
    'a/one.bin': bytes,
    'a/b/two.txt': Buffer.from('two'),
    'a/b/c/three.txt': Buffer.from('three'),
    'top.json': Buffer.from('{"x":1}'),
    'empty.txt': Buffer.alloc(0),
    'dir with space/é.txt': Buffer.from('unicode'),
  };
  for (const [path, data] of Object.entries(files)) {
    await admin.z3.uploadFile({ bucketName, 'objectPath+': path, file: new Blob([data]) });
  }
  for (const [path, data] of Object.entries(files)) {
    const got = await admin.z3.downloadFile({ bucketName, 'objectPath+': path });
    assert.equal(sha(got), sha(data), `${path} round-trips`);
  }

  const all = await admin.z3.listObjects({ bucketName, 'objectPath+': '' });
  assert.deepEqual(keys(all), Object.keys(files).map((p) => `${bucketName}/${p}`).sort());
  assert.ok(all.every((o) => !Number.isNaN(Date.parse(o.lastModified))));
  const under = await admin.z3.listObjects({ bucketName, 'objectPath+': 'a' });
  assert.deepEqual(keys(under), [`${bucketName}/a/b/c/three.txt`, `${bucketName}/a/b/two.txt`, `${bucketName}/a/one.bin`]);
  const direct = await admin.z3.listObjects({ bucketName, 'objectPath+': 'a/', direct: true });
  assert.deepEqual(keys(direct), [`${bucketName}/a/b/`, `${bucketName}/a/one.bin`]);
  const rootDirect = await admin.z3.listObjects({ bucketName, 'objectPath+': '', direct: true });
  assert.deepEqual(keys(rootDirect), [`${bucketName}/a/`, `${bucketName}/dir with space/`, `${bucketName}/empty.txt`, `${bucketName}/top.json`]);

  // Overwrite: the new bytes replace the old ones.
  await admin.z3.uploadFile({ bucketName, 'objectPath+': 'top.json', file: new Blob(['{"x":2}'], { type: 'application/json' }) });
  assert.equal(Buffer.from(await admin.z3.downloadFile({ bucketName, 'objectPath+': 'top.json' })).toString(), '{"x":2}');

  // A file, then a folder with its children.
  await admin.z3.deleteObject({ bucketName, 'objectPath+': 'top.json' });
  await rejects(admin.z3.downloadFile({ bucketName, 'objectPath+': 'top.json' }), undefined, /Failed to download/);
  await rejects(admin.z3.deleteObject({ bucketName, 'objectPath+': 'top.json' }), 404);
  const children = keys(under);
  await admin.z3.deleteObject({ bucketName, 'objectPath+': 'a', children });
  assert.deepEqual(keys(await admin.z3.listObjects({ bucketName, 'objectPath+': '' })),
    [`${bucketName}/dir with space/é.txt`, `${bucketName}/empty.txt`]);

  // Bad paths are 400s with the reason.
  await rejects(admin.z3.getPresignedUrl({ bucketName, 'objectPath+': 'x//y', action: 'upload' }), 400, /empty segment/);
  await rejects(admin.z3.getPresignedUrl({ bucketName, 'objectPath+': 'x', action: 'delete' }), 400, /upload.*download/);
  await rejects(admin.z3.getPresignedUrl({ bucketName: 'no-such-bucket', 'objectPath+': 'x', action: 'upload' }), 404, /no bucket/);
});

test('presigned URLs: single purpose, tamper-proof, any content type', async () => {
  const bucketName = `e2e-signed-${suffix}`;
  await admin.z3.createBucket({ bucketName });
  const { signedUrl: up } = await admin.z3.getPresignedUrl({ bucketName, 'objectPath+': 'doc.pdf', action: 'upload' });
  assert.ok(up.startsWith(`${base}/`), `absolute URL on Ward: ${up}`);
  let res = await fetch(up, { method: 'PUT', body: 'pdf bytes', headers: { 'content-type': 'application/pdf' } });
  assert.equal(res.status, 200);
  res = await fetch(up);
  assert.equal(res.status, 403, 'an upload URL cannot download');
  assert.match((await res.json()).message, /uploading/);

  const { signedUrl: down } = await admin.z3.getPresignedUrl({ bucketName, 'objectPath+': 'doc.pdf', action: 'download' });
  res = await fetch(down);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/pdf');
  assert.equal(res.headers.get('content-length'), '9');
  assert.equal(res.headers.get('etag'), `"${sha(Buffer.from('pdf bytes'))}"`);
  assert.equal(await res.text(), 'pdf bytes');
  res = await fetch(down, { headers: { range: 'bytes=4-' } });
  assert.equal(res.status, 206);
  assert.equal(await res.text(), 'bytes');
  res = await fetch(down, { method: 'PUT', body: 'overwrite' });
  assert.equal(res.status, 403, 'a download URL cannot upload');

  const other = down.replace('doc.pdf', 'other.pdf');
  res = await fetch(other);
  assert.equal(res.status, 403);
  assert.match((await res.json()).message, /signature does not match/);
  const longer = new URL(down);
  longer.searchParams.set('expires', String(Number(longer.searchParams.get('expires')) + 3600));
  res = await fetch(longer);
  assert.equal(res.status, 403);
});

test('policies: Z3:bucket/reports/** allows below it and 403s elsewhere', async () => {
  const bucketName = `e2e-policy-${suffix}`;
  await admin.z3.createBucket({ bucketName });
  await admin.z3.uploadFile({ bucketName, 'objectPath+': 'private/secret.txt', file: new Blob(['secret']) });
  const client = await admin.m2m.create({
    name: `z3-reports-${suffix}`,
    accessPolicy: {
      rule: [{
        resource: `Z3:${bucketName}/reports/**`,
        action: ['Z3:PutObject', 'Z3:GetObject', 'Z3:ListObjects', 'Z3:DeleteObject'],
        effect: 'Allow',
      }],
    },
  });
  const { secret } = await admin.m2m.rotateSecret({ id: client.id });
  const limited = sdk(await token(client.clientId, secret));

  await limited.z3.uploadFile({ bucketName, 'objectPath+': 'reports/2026/q4.csv', file: new Blob(['a,b\n1,2\n']) });
  const got = await limited.z3.downloadFile({ bucketName, 'objectPath+': 'reports/2026/q4.csv' });
  assert.equal(Buffer.from(got).toString(), 'a,b\n1,2\n');
  assert.deepEqual(keys(await limited.z3.listObjects({ bucketName, 'objectPath+': 'reports/' })), [`${bucketName}/reports/2026/q4.csv`]);

  await rejects(limited.z3.getPresignedUrl({ bucketName, 'objectPath+': 'private/secret.txt', action: 'download' }), 403, /Z3:GetObject/);
  await rejects(limited.z3.getPresignedUrl({ bucketName, 'objectPath+': 'elsewhere.csv', action: 'upload' }), 403, /Z3:PutObject/);
  await rejects(limited.z3.listObjects({ bucketName, 'objectPath+': '' }), 403, /Z3:ListObjects/);
  await rejects(limited.z3.listBuckets(), 403, /Z3:ListBuckets/);
  await rejects(limited.z3.createBucket({ bucketName: `e2e-nope-${suffix}` }), 403, /Z3:CreateBucket/);
  await rejects(limited.z3.deleteObject({ bucketName, 'objectPath+': 'private/secret.txt' }), 403, /Z3:DeleteObject/);
  await rejects(limited.z3.deleteBucket({ bucketName }), 403, /Z3:DeleteBucket/);

  await limited.z3.deleteObject({ bucketName, 'objectPath+': 'reports', children: [] });
  assert.deepEqual(keys(await admin.z3.listObjects({ bucketName, 'objectPath+': '' })), [`${bucketName}/private/secret.txt`]);
});

// Oystehr names its own buckets "<projectId>-<name>": longer than S3's 63
// characters and with capitals. Names differing only in case are distinct.
test('Oystehr bucket names: <projectId>-TelemedRecordings and <projectId>-invoiceable-patients-reports', async () => {
  const projectId = env('WARD_PROJECT_ID');
  const tele = `${projectId}-TelemedRecordings`;
  const inv = `${projectId}-invoiceable-patients-reports`;
  const lower = `${projectId}-telemedrecordings`;
  for (const bucketName of [tele, inv, lower]) {
    assert.equal((await admin.z3.createBucket({ bucketName })).name, bucketName);
  }
  const names = (await admin.z3.listBuckets()).map((b) => b.name);
  for (const n of [tele, inv, lower]) assert.ok(names.includes(n), `${n} is listed`);
  await rejects(admin.z3.createBucket({ bucketName: tele }), 409, /already exists/);

  // Presign, upload and download by hand (bare fetch), then with the SDK's helpers.
  for (const bucketName of [tele, inv, lower]) {
    const { signedUrl: up } = await admin.z3.getPresignedUrl({ bucketName, 'objectPath+': 'visit/1.txt', action: 'upload' });
    assert.ok(up.includes(`/${bucketName}/visit/1.txt?`), up);
    let res = await fetch(up, { method: 'PUT', body: `in ${bucketName}`, headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 200);
    const { signedUrl: down } = await admin.z3.getPresignedUrl({ bucketName, 'objectPath+': 'visit/1.txt', action: 'download' });
    res = await fetch(down);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), `in ${bucketName}`, 'each bucket keeps its own bytes');
    await admin.z3.uploadFile({ bucketName, 'objectPath+': 'sdk/2.txt', file: new Blob([`sdk ${bucketName}`]) });
    assert.equal(Buffer.from(await admin.z3.downloadFile({ bucketName, 'objectPath+': 'sdk/2.txt' })).toString(), `sdk ${bucketName}`);
    assert.deepEqual(keys(await admin.z3.listObjects({ bucketName, 'objectPath+': '' })), [`${bucketName}/sdk/2.txt`, `${bucketName}/visit/1.txt`]);
  }

  // A policy on Z3:<bucket>/**: all of the recordings bucket; uploads but no
  // downloads in the reports bucket; nothing in the lowercase twin.
  const client = await admin.m2m.create({
    name: `z3-oystehr-names-${suffix}`,
    accessPolicy: {
      rule: [
        { resource: [`Z3:${tele}/**`, `Z3:${inv}/**`], action: ['Z3:PutObject', 'Z3:GetObject', 'Z3:ListObjects', 'Z3:DeleteObject'], effect: 'Allow' },
        { resource: `Z3:${inv}/**`, action: ['Z3:GetObject'], effect: 'Deny' },
      ],
    },
  });
  const { secret } = await admin.m2m.rotateSecret({ id: client.id });
  const limited = sdk(await token(client.clientId, secret));
  await limited.z3.uploadFile({ bucketName: tele, 'objectPath+': 'visit/3.txt', file: new Blob(['three']) });
  assert.equal(Buffer.from(await limited.z3.downloadFile({ bucketName: tele, 'objectPath+': 'visit/3.txt' })).toString(), 'three');
  assert.deepEqual(keys(await limited.z3.listObjects({ bucketName: tele, 'objectPath+': 'visit/' })), [`${tele}/visit/1.txt`, `${tele}/visit/3.txt`]);
  await limited.z3.uploadFile({ bucketName: inv, 'objectPath+': '2026/report.csv', file: new Blob(['a,b\n']) });
  await rejects(limited.z3.getPresignedUrl({ bucketName: inv, 'objectPath+': '2026/report.csv', action: 'download' }), 403, /Z3:GetObject/);
  await rejects(limited.z3.getPresignedUrl({ bucketName: lower, 'objectPath+': 'visit/1.txt', action: 'download' }), 403, /Z3:GetObject/);
  await rejects(limited.z3.getPresignedUrl({ bucketName: lower, 'objectPath+': 'x.txt', action: 'upload' }), 403, /Z3:PutObject/);
  await rejects(limited.z3.deleteBucket({ bucketName: tele }), 403, /Z3:DeleteBucket/);
  await limited.z3.deleteObject({ bucketName: tele, 'objectPath+': 'visit/3.txt' });

  // Delete everything, then the buckets.
  for (const bucketName of [tele, inv, lower]) {
    const all = keys(await admin.z3.listObjects({ bucketName, 'objectPath+': '' }));
    await admin.z3.deleteObject({ bucketName, 'objectPath+': '', children: all });
    assert.deepEqual(await admin.z3.listObjects({ bucketName, 'objectPath+': '' }), []);
    await admin.z3.deleteBucket({ bucketName });
  }
  const left = (await admin.z3.listBuckets()).map((b) => b.name);
  for (const n of [tele, inv, lower]) assert.ok(!left.includes(n), `${n} is gone`);
});
