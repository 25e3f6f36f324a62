// Ward's Node.js bootstrap: loads the function's module and serves
// invocations over the AWS Lambda Runtime API (AWS_LAMBDA_RUNTIME_API).
// Embedded in the ward binary; kept small because it is on the cold path.
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, route, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    const req = http.request({ host, port, method, path: '/2018-06-01/runtime' + route, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorBody(e) {
  return JSON.stringify({
    errorMessage: e && e.message !== undefined ? String(e.message) : String(e),
    errorType: (e && e.name) || 'Error',
    stackTrace: e && e.stack ? String(e.stack).split('\n').slice(1, 11).map((s) => s.trim()) : [],
  });
}

async function load() {
  const root = process.env.LAMBDA_TASK_ROOT;
  const spec = process.env._HANDLER || 'index.index';
  const dot = spec.lastIndexOf('.');
  const modName = dot > 0 ? spec.slice(0, dot) : 'index';
  const fnName = dot > 0 ? spec.slice(dot + 1) : 'index';
  let mod;
  const mjs = path.join(root, modName + '.mjs');
  if (fs.existsSync(mjs)) {
    mod = await import(pathToFileURL(mjs).href);
  } else {
    const file = path.join(root, modName);
    try {
      mod = require(file);
    } catch (e) {
      if (e && e.code === 'ERR_REQUIRE_ESM') mod = await import(pathToFileURL(require.resolve(file)).href);
      else throw e;
    }
  }
  const pick = (m) => m && (m[fnName] || m.handler || m.index);
  const fn = pick(mod) || (mod && pick(mod.default));
  if (typeof fn !== 'function') {
    const e = new Error(`${modName} exports no function "${fnName}" (nor "handler"): export one, e.g. exports.index = async (event) => ({ statusCode: 200, body: '{}' })`);
    e.name = 'HandlerNotFound';
    throw e;
  }
  return fn;
}

function run(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err, value) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(value);
    };
    try {
      const r = handler(event, context, done);
      if (r && typeof r.then === 'function') r.then((v) => done(null, v), (e) => done(e || new Error('rejected')));
      else if (handler.length < 3) done(null, r);
    } catch (e) {
      done(e);
    }
  });
}

(async () => {
  let handler;
  try {
    handler = await load();
  } catch (e) {
    await call('POST', '/init/error', errorBody(e));
    process.exit(1);
  }
  for (;;) {
    const next = await call('GET', '/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    const deadline = Number(next.headers['lambda-runtime-deadline-ms']);
    const context = {
      awsRequestId: id,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: '$LATEST',
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      invokedFunctionArn: next.headers['lambda-runtime-invoked-function-arn'],
      getRemainingTimeInMillis: () => deadline - Date.now(),
      callbackWaitsForEmptyEventLoop: false,
    };
    let out;
    try {
      const value = await run(handler, JSON.parse(next.body.toString('utf8')), context);
      out = ['/invocation/' + id + '/response', JSON.stringify(value === undefined ? null : value)];
    } catch (e) {
      out = ['/invocation/' + id + '/error', errorBody(e)];
    }
    await call('POST', out[0], out[1]);
  }
})().catch((e) => {
  console.error('ward bootstrap:', e);
  process.exit(1);
});
