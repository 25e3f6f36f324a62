// Ward's Node.js bootstrap: loads the function's module and serves its
// invocations over the AWS Lambda Runtime API at AWS_LAMBDA_RUNTIME_API.
// Embedded in the ward binary. It is on the cold-start path: load only what
// is needed, lazily.
'use strict';
const http = require('node:http');
const path = require('node:path');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const colon = api.lastIndexOf(':');
const host = api.slice(0, colon);
const port = Number(api.slice(colon + 1));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const base = '/2018-06-01/runtime';

// Node writes to a full pipe asynchronously (it buffers, then writes when
// the pipe drains). Ward attributes output to an invocation by what is in
// the pipe when the answer arrives, so make the writes blocking: then a
// console.log has reached the pipe when it returns. flushed() covers the
// case where that is not possible.
for (const s of [process.stdout, process.stderr]) {
  if (s._handle && typeof s._handle.setBlocking === 'function') s._handle.setBlocking(true);
}
function flushed() {
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0);
  return Promise.all(pending.map((s) => new Promise((resolve) => s.write('', resolve))));
}

async function call(method, route, body, headers) {
  if (method === 'POST') await flushed();
  return new Promise((resolve, reject) => {
    const h = Object.assign({}, headers);
    if (body !== undefined) {
      h['content-type'] = 'application/json';
      h['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host, port, method, path: base + route, agent, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorJSON(e, type) {
  const isErr = e instanceof Error;
  return {
    errorType: type || (isErr && e.name) || 'Error',
    errorMessage: isErr ? String(e.message) : safeString(e),
    stackTrace: isErr && e.stack ? String(e.stack).split('\n').slice(1, 21).map((s) => s.trim()) : [],
  };
}

function safeString(v) {
  try {
    return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch (_) {
    return String(v);
  }
}

// Report an error the way Lambda's Node runtime logs it, then post it.
async function postError(route, e, type, label) {
  const body = errorJSON(e, type);
  process.stderr.write(label + '\t' + JSON.stringify(body) + '\n');
  await call('POST', route, JSON.stringify(body), { 'lambda-runtime-function-error-type': body.errorType });
}

function isESMError(e) {
  return e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE' ||
    (e.name === 'SyntaxError' && /import statement outside a module|Unexpected token 'export'|import\.meta/.test(e.message)));
}

function importFile(file) {
  return import(require('node:url').pathToFileURL(file).href);
}

async function load() {
  const root = process.env.LAMBDA_TASK_ROOT;
  const spec = process.env._HANDLER || 'index.index';
  const dot = spec.lastIndexOf('.');
  const modName = dot > 0 ? spec.slice(0, dot) : spec;
  const fnName = dot > 0 ? spec.slice(dot + 1) : 'index';
  const file = path.resolve(root, modName);
  const fs = require('node:fs');
  let mod;
  if (fs.existsSync(file + '.mjs')) {
    mod = await importFile(file + '.mjs');
  } else {
    let resolved;
    try {
      resolved = require.resolve(fs.existsSync(file + '.cjs') ? file + '.cjs' : file);
    } catch (e) {
      const err = new Error(`Cannot find module '${modName}' (handler '${spec}'): the zip must hold ${modName}.js, ${modName}.mjs or ${modName}.cjs at its root`);
      err.name = 'Runtime.ImportModuleError';
      throw err;
    }
    try {
      mod = require(resolved);
    } catch (e) {
      if (!isESMError(e)) throw e;
      mod = await importFile(resolved);
    }
  }
  const pick = (m) => m && (typeof m[fnName] === 'function' ? m[fnName] : typeof m.handler === 'function' ? m.handler : m.index);
  let fn = pick(mod);
  if (typeof fn !== 'function' && mod) fn = pick(mod.default);
  if (typeof fn !== 'function') {
    const e = new Error(`${modName} exports no function '${fnName}' (nor 'handler'): export one, e.g. exports.${fnName} = async (event) => ({ statusCode: 200, body: '{}' })`);
    e.name = 'Runtime.HandlerNotFound';
    throw e;
  }
  return fn;
}

// run calls the handler in any of its styles: async, sync, or callback
// (event, context, callback), plus the old context.succeed/fail/done.
function run(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err, value) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err);
      else resolve(value);
    };
    context.done = done;
    context.succeed = (v) => done(null, v);
    context.fail = (e) => done(e === undefined || e === null ? new Error('failed') : e);
    try {
      const r = handler(event, context, done);
      if (r && typeof r.then === 'function') r.then((v) => done(null, v), (e) => done(e === undefined || e === null ? new Error('the handler rejected with ' + e) : e));
      else if (handler.length < 3) done(null, r);
    } catch (e) {
      done(e === undefined || e === null ? new Error('the handler threw ' + e) : e);
    }
  });
}

let current = null; // the request id in flight
let loaded = false;

// Errors nobody awaited fail the invocation in flight (or the init), as
// on Lambda; Ward then replaces this process. Between invocations there is
// nothing to fail: log and exit.
async function fatal(e, type) {
  try {
    if (current) await postError('/invocation/' + encodeURIComponent(current) + '/error', e, type, 'ERROR\tUncaught Exception');
    else if (!loaded) await postError('/init/error', e, type, 'ERROR\tUncaught Exception');
    else process.stderr.write('ERROR\tUncaught Exception\t' + JSON.stringify(errorJSON(e, type)) + '\n');
  } finally {
    process.exit(1);
  }
}
process.on('uncaughtException', (e) => fatal(e));
process.on('unhandledRejection', (e) => fatal(e instanceof Error ? e : new Error(safeString(e)), 'Runtime.UnhandledPromiseRejection'));

(async () => {
  let handler;
  try {
    handler = await load();
    loaded = true;
  } catch (e) {
    await postError('/init/error', e, undefined, 'ERROR\tInit Error');
    process.exit(1);
  }
  const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME;
  const memoryLimitInMB = process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
  for (;;) {
    const next = await call('GET', '/invocation/next');
    if (next.status !== 200) throw new Error('runtime api: /next answered ' + next.status);
    const id = next.headers['lambda-runtime-aws-request-id'];
    const deadline = Number(next.headers['lambda-runtime-deadline-ms']);
    const context = {
      awsRequestId: id,
      functionName,
      functionVersion: '$LATEST',
      memoryLimitInMB,
      invokedFunctionArn: next.headers['lambda-runtime-invoked-function-arn'],
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
      callbackWaitsForEmptyEventLoop: false,
    };
    process.env._X_AMZN_TRACE_ID = next.headers['lambda-runtime-trace-id'] || '';
    current = id;
    const route = '/invocation/' + encodeURIComponent(id);
    let body;
    try {
      const value = await run(handler, JSON.parse(next.body.toString('utf8')), context);
      body = JSON.stringify(value === undefined ? null : value);
    } catch (e) {
      current = null;
      await postError(route + '/error', e, undefined, 'ERROR\tInvoke Error');
      continue;
    }
    current = null;
    await call('POST', route + '/response', body === undefined ? 'null' : body);
  }
})().catch((e) => {
  process.stderr.write('ward bootstrap: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
