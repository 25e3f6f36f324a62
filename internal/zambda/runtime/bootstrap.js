// Ward's Node.js bootstrap: loads the function's module and serves its
// invocations over the AWS Lambda Runtime API at AWS_LAMBDA_RUNTIME_API.
// Embedded in the ward binary. It is on the cold-start path: load only what
// is needed, lazily.
'use strict';
const http = require('node:http');
const net = require('node:net'); // loaded by http already
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

// Outbound HTTP goes through the egress proxy named by HTTP_PROXY and
// HTTPS_PROXY: in Ward's sandbox the worker's network is a loopback on
// which Ward serves the Runtime API, plain forwards of its own URL, and
// that proxy (CONNECT, or absolute-form http://), which dials the real
// destination under the egress policy. Go, curl and Python honour the
// variables; Node 20 does not, and Node 22's NODE_USE_ENV_PROXY loads
// undici at every start and covers only the global agents. So route Node's
// clients here: every http/https Agent, and fetch. Nothing happens without
// the variables.
const proxyEnv = {
  'http:': process.env.http_proxy || process.env.HTTP_PROXY || '',
  'https:': process.env.https_proxy || process.env.HTTPS_PROXY || '',
};
const proxies = {}; // protocol -> { host, port, auth } or null, parsed on first use
let noProxyRules; // parsed NO_PROXY, on first use
if (proxyEnv['http:'] || proxyEnv['https:']) {
  proxyAgents();
  proxyFetch();
}

// proxyFor returns the proxy ({ host, port, auth }) to reach host:port
// through, or null to connect directly: loopback (the Runtime API, Ward's
// forwards), NO_PROXY, and the proxy itself (clients that speak to it on
// their own, like axios, must not be tunnelled through it again).
function proxyFor(protocol, host, port) {
  const proxy = proxyURL(protocol);
  if (!proxy) return null;
  host = bareHost(host);
  port = Number(port);
  if (host === 'localhost' || host.endsWith('.localhost') || host === '::1' || (host.startsWith('127.') && net.isIPv4(host))) return null;
  for (const p of [proxyURL('http:'), proxyURL('https:')]) {
    if (p && p.host === host && p.port === port) return null;
  }
  return noProxy(host, port) ? null : proxy;
}

function bareHost(host) {
  host = String(host || 'localhost').toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

function proxyURL(protocol) {
  if (!(protocol in proxies)) {
    let u = null;
    const v = proxyEnv[protocol];
    try {
      if (v) u = new URL(v.includes('://') ? v : 'http://' + v);
    } catch (_) {}
    if (u && u.protocol !== 'http:') {
      process.stderr.write(`ward bootstrap: ignoring the ${protocol.slice(0, -1)} proxy ${u.protocol}//${u.host}: only http:// proxies are supported\n`);
      u = null;
    }
    proxies[protocol] = u && {
      host: bareHost(u.hostname),
      port: Number(u.port) || 80,
      auth: u.username ? 'Basic ' + Buffer.from(decodeURIComponent(u.username) + ':' + decodeURIComponent(u.password)).toString('base64') : '',
    };
  }
  return proxies[protocol];
}

// noProxy reports whether NO_PROXY names host:port. Entries: "*", a host
// or IP (with an optional :port), a domain (which matches its subdomains;
// a leading "." or "*." is the same).
function noProxy(host, port) {
  if (!noProxyRules) {
    noProxyRules = (process.env.no_proxy || process.env.NO_PROXY || '').toLowerCase().split(/[\s,]+/).filter(Boolean).map((e) => {
      let p = 0;
      const m = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(e); // [v6]:port or host:port, not a bare IPv6
      if (m) [e, p] = [m[1], Number(m[2])];
      e = bareHost(e.replace(/^\*?\./, ''));
      return { host: e, port: p, domain: !net.isIP(e) };
    });
  }
  return noProxyRules.some((r) => r.host === '*' ||
    ((!r.port || r.port === port) && (host === r.host || (r.domain && host.endsWith('.' + r.host)))));
}

// tunnel connects to host:port through the proxy with CONNECT and hands
// over the socket once the proxy answers 2xx. A refusal becomes an error
// that carries the proxy's answer (Ward's starts "ward egress: ...").
function tunnel(proxy, host, port, cb) {
  const target = (host.includes(':') ? '[' + host + ']' : host) + ':' + port;
  const sock = net.connect(proxy.port, proxy.host).setNoDelay(true);
  let buf = Buffer.alloc(0);
  let status = '';
  let bodyLen = -1;
  let finished = false;
  const finish = (err) => {
    if (finished) return;
    finished = true;
    sock.removeListener('readable', onReadable);
    sock.removeListener('error', finish);
    sock.removeListener('end', onEnd);
    sock.removeListener('timeout', onTimeout);
    sock.setTimeout(0);
    if (err) sock.destroy();
    cb(err, err ? undefined : sock);
  };
  const refused = () => {
    const text = buf.toString('utf8').trim().slice(0, 1024);
    const e = new Error(`the egress proxy refused ${target}: ${status}${text ? ': ' + text : ''}`);
    e.code = 'ERR_PROXY_TUNNEL';
    e.statusCode = Number(status.split(' ')[0]);
    finish(e);
  };
  const onEnd = () => (status ? refused() : finish(new Error(`the egress proxy closed the connection before answering CONNECT ${target}`)));
  // Longer than Ward's proxy takes to dial (10 s), so its answer comes first.
  const onTimeout = () => finish(new Error(`the egress proxy did not answer CONNECT ${target} within 30 s`));
  // Reading with 'readable' (not 'data') leaves the socket paused for its
  // next reader, with anything past the answer put back.
  function onReadable() {
    let chunk;
    while ((chunk = sock.read()) !== null) buf = Buffer.concat([buf, chunk]);
    if (finished) return;
    if (!status) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 16384) finish(new Error(`the egress proxy's answer to CONNECT ${target} is too long`));
        return;
      }
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] ((\d)\d\d.*)$/.exec(head[0]);
      if (!m) return finish(new Error(`the egress proxy answered CONNECT ${target} with ${JSON.stringify(head[0])}`));
      const rest = buf.subarray(end + 4);
      if (m[2] === '2') {
        if (rest.length) sock.unshift(rest);
        return finish(null);
      }
      status = m[1];
      const cl = head.find((h) => /^content-length:/i.test(h));
      bodyLen = cl ? Number(cl.slice(15)) : -1;
      buf = rest;
    }
    if ((bodyLen >= 0 && buf.length >= bodyLen) || buf.length > 4096) refused();
  }
  sock.on('readable', onReadable);
  sock.on('error', finish);
  sock.on('end', onEnd);
  sock.setTimeout(30000, onTimeout);
  sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n` + (proxy.auth ? `Proxy-Authorization: ${proxy.auth}\r\n` : '') + '\r\n');
}

// proxyAgents patches createConnection, which every Agent calls (libraries'
// too: axios, node-fetch, the AWS SDK), for http.Agent and https.Agent.
// Node's Agent accepts an asynchronous createConnection(options, callback).
// https is not loaded here (it costs ~2 ms, and most functions never use
// it): https.js assigns Agent.prototype.createConnection as it loads, and
// that assignment reaches the setter of an accessor on http.Agent.prototype,
// which patches it then. Not covered: a request's own createConnection
// option (the ws package passes one) and sockets opened with net directly.
function proxyAgents() {
  const proto = http.Agent.prototype;
  const httpConnect = viaProxy(proto.createConnection, 'http:');
  Object.defineProperty(proto, 'createConnection', {
    configurable: true,
    enumerable: true,
    get() {
      return httpConnect;
    },
    set(fn) {
      const own = this !== proto && Object.getPrototypeOf(this) === proto && calledFrom('node:https');
      Object.defineProperty(this, 'createConnection', { value: own ? viaProxy(fn, 'https:') : fn, writable: true, configurable: true, enumerable: true });
    },
  });
}

function calledFrom(file) {
  const { stackTraceLimit, prepareStackTrace } = Error;
  Error.stackTraceLimit = 4;
  Error.prepareStackTrace = (_, frames) => frames;
  const frames = new Error().stack;
  Error.stackTraceLimit = stackTraceLimit;
  Error.prepareStackTrace = prepareStackTrace;
  return Array.isArray(frames) && frames.some((f) => f.getFileName() === file);
}

// viaProxy wraps an Agent's createConnection: where proxyFor says so it
// tunnels first, then hands the tunnel over (http) or runs the original on
// it (https: tls.connect({ socket }), with the options Node computed:
// servername, ca, rejectUnauthorized, the session cache). Left alone: calls
// that expect a socket back (no callback), Unix sockets, and agents that
// proxy by themselves (Node 22's proxyEnv).
function viaProxy(orig, protocol) {
  return function createConnection(options, cb) {
    const proxy = typeof cb === 'function' && options && typeof options === 'object' && !options.socketPath &&
      !(this && this.options && this.options.proxyEnv) &&
      proxyFor(protocol, options.host, options.port || (protocol === 'https:' ? 443 : 80));
    if (!proxy) return orig.apply(this, arguments);
    tunnel(proxy, bareHost(options.host), Number(options.port) || (protocol === 'https:' ? 443 : 80), (err, sock) => {
      if (err) return cb(err);
      if (options.keepAlive) sock.setKeepAlive(true, options.keepAliveInitialDelay);
      if (protocol === 'https:') {
        let tlsSock;
        try {
          tlsSock = orig.call(this, { ...options, socket: sock });
        } catch (e) {
          sock.destroy();
          return cb(e);
        }
        return cb(null, tlsSock);
      }
      if (options.timeout) sock.setTimeout(options.timeout);
      cb(null, sock);
    });
  };
}

// proxyFetch: fetch is undici, which Node loads on the first call (~15 ms)
// and which then makes its global dispatcher, an Agent, at
// globalThis[Symbol.for('undici.globalDispatcher.1')]. Just before the
// first fetch, load undici (reading the lazy global Headers does that) and
// replace that Agent with one whose connect goes through the proxy. A
// dispatcher of another kind (a ProxyAgent, a MockAgent) is the function's
// own and stays. Nothing here may touch undici's lazy globals before then:
// on Node 22 even reading their property descriptors loads undici.
function proxyFetch() {
  const nodeFetch = globalThis.fetch;
  if (typeof nodeFetch !== 'function') return;
  let ready = false;
  globalThis.fetch = function fetch(input, init) {
    if (!ready) {
      ready = true;
      void globalThis.Headers;
      const kDispatcher = Symbol.for('undici.globalDispatcher.1');
      const d = globalThis[kDispatcher];
      if (d && d.constructor && d.constructor.name === 'Agent') globalThis[kDispatcher] = new d.constructor({ connect: connectUndici });
    }
    return nodeFetch(input, init);
  };
}

// connectUndici is the connect function of that Agent: undici's own does
// the same (TCP, then TLS with SNI and ALPN http/1.1), without the proxy.
function connectUndici({ hostname, protocol, port, servername }, callback) {
  const secure = protocol === 'https:';
  port = Number(port) || (secure ? 443 : 80);
  const onSocket = (err, sock) => {
    if (err) return callback(err);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 60000);
    if (!secure) return callback(null, sock);
    const name = servername || (net.isIP(hostname) ? undefined : hostname);
    const tlsSock = require('node:tls').connect({ socket: sock, servername: name, ALPNProtocols: ['http/1.1'] });
    const onError = (e) => {
      tlsSock.destroy();
      callback(e);
    };
    tlsSock.once('error', onError).once('secureConnect', () => {
      tlsSock.removeListener('error', onError);
      callback(null, tlsSock);
    });
  };
  const proxy = proxyFor(protocol, hostname, port);
  if (proxy) return tunnel(proxy, bareHost(hostname), port, onSocket);
  const sock = net.connect({ host: hostname, port });
  const onError = (e) => {
    sock.destroy();
    onSocket(e);
  };
  sock.once('error', onError).once('connect', () => {
    sock.removeListener('error', onError);
    onSocket(null, sock);
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
