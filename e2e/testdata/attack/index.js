// A hostile zambda for the isolation tests: it tries what a tenant's code
// should never manage (read Ward's files and other workers', write outside
// /tmp, reach Ward's own services and the host's network) and what should
// hurt only itself (fork bombs, huge allocations, a full disk, a spinning
// CPU, processes left behind). Each probe reports what happened.
const fs = require('node:fs');
const net = require('node:net');
const http = require('node:http');
const { spawn } = require('node:child_process');

const reply = (value) => ({ statusCode: 200, body: JSON.stringify(value) });
const tryIt = async (f) => {
  try {
    const out = await f();
    return { ok: true, out: out === undefined ? '' : String(out).slice(0, 300) };
  } catch (e) {
    return { ok: false, err: String((e && (e.code || e.message)) || e) };
  }
};

function dial(addr) {
  const i = addr.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
    s.setTimeout(2000, () => { s.destroy(); reject(new Error('timeout')); });
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('error', reject);
  });
}

// viaProxy asks the sandbox's egress proxy for a tunnel, as any HTTP
// client honouring HTTPS_PROXY would.
function viaProxy(addr) {
  const proxy = new URL(process.env.HTTPS_PROXY);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: addr });
    req.on('connect', (res, socket) => {
      socket.destroy();
      if (res.statusCode === 200) resolve('tunnel');
      else reject(new Error('proxy answered ' + res.statusCode));
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => reject(new Error('proxy answered ' + res.statusCode + ': ' + body.trim())));
    });
    req.on('error', reject);
    req.setTimeout(3000, () => { req.destroy(); reject(new Error('timeout')); });
    req.end();
  });
}

exports.index = async (event) => {
  const body = event.body ? JSON.parse(event.body) : {};
  switch (body.mode) {
    case 'probe': {
      const out = {};
      for (const p of body.read || []) out['read ' + p] = await tryIt(() => fs.readFileSync(p, 'utf8'));
      for (const p of body.list || []) out['list ' + p] = await tryIt(() => fs.readdirSync(p).join(','));
      for (const p of body.write || []) out['write ' + p] = await tryIt(() => fs.writeFileSync(p, 'pwned'));
      for (const a of body.dial || []) out['dial ' + a] = await tryIt(() => dial(a));
      for (const a of body.proxy || []) out['proxy ' + a] = await tryIt(() => viaProxy(a));
      out.whoami = await tryIt(() => `${process.getuid()}:${process.getgid()}`);
      out.pids = await tryIt(() => fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).join(','));
      return reply(out);
    }
    case 'forkbomb':
      // Exhausts the sandbox's process limit, then the invocation times out.
      spawn('/bin/sh', ['-c', 'b() { b | b & }; b'], { stdio: 'ignore', detached: true });
      await new Promise(() => setInterval(() => {}, 1000)); // keeps the event loop alive

      break;
    case 'alloc': {
      const hog = [];
      for (let i = 0; i < 2048; i++) hog.push(Buffer.alloc(1 << 20, 1)); // 2 GiB, touched
      return reply({ allocated: hog.length });
    }
    case 'fill': {
      const chunk = Buffer.alloc(4 << 20, 7);
      const fd = fs.openSync('/tmp/fill', 'w');
      for (let i = 0; ; i++) fs.writeSync(fd, chunk); // ENOSPC ends it
    }
    case 'spin':
      for (;;) {}
    case 'orphan': {
      // Processes meant to outlive the invocation, in a session of their own.
      for (let i = 0; i < 5; i++) spawn('/bin/sleep', ['300'], { stdio: 'ignore', detached: true }).unref();
      return reply({ left: 5 });
    }
    case 'ps':
      return reply({ pids: fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)) });
  }
  return reply({ echo: body });
};
