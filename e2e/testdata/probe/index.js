// A zambda for the end-to-end tests: what it does depends on body.mode.
exports.index = async (event) => {
  const body = event.body ? JSON.parse(event.body) : {};
  if (body.resourceType === 'Patient') {
    // A subscription trigger: note the patient with the execution role's token.
    const res = await fetch(`${event.secrets.FHIR_BASE}/Observation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${event.accessToken}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'seen by zambda' }, subject: { reference: `Patient/${body.id}` } }),
    });
    return { statusCode: res.status === 201 ? 200 : 500, body: JSON.stringify({ created: res.status }) };
  }
  const reply = (statusCode, value) => ({ statusCode, body: JSON.stringify(value) });
  switch (body.mode) {
    case 'probe': {
      const token = event.accessToken;
      let search = null;
      let create = null;
      if (token) {
        const auth = { authorization: `Bearer ${token}` };
        search = (await fetch(`${body.fhirBase}/Patient?_count=1`, { headers: auth })).status;
        create = (await fetch(`${body.fhirBase}/Patient`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/fhir+json' },
          body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'FromZambda' }] }),
        })).status;
      }
      return reply(200, {
        body,
        greeting: event.secrets && event.secrets.GREETING,
        auth: event.headers && event.headers.Authorization,
        hasToken: Boolean(token),
        search,
        create,
      });
    }
    case 'throw':
      throw new Error('boom');
    case 'crash':
      process.exit(3);
    case 'hang':
      for (;;) {}
    case 'oom': {
      const hog = [];
      for (;;) hog.push(new Array(1e6).fill(Math.random()));
    }
    case 'big':
      return reply(200, { pad: 'x'.repeat(7 << 20) });
    case 'teapot':
      return reply(418, { message: 'I am a teapot, short and stout', code: 418 });
    case 'log':
      console.log(`a line to find: ${body.line}`);
      console.error('and one on stderr');
      return reply(200, { logged: true });
    case 'cron':
      console.log('cron tick');
      return reply(200, { ok: true });
    default:
      return reply(200, body);
  }
};
