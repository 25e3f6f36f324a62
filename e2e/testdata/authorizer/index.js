// A SMART on FHIR token authorizer for Ward, shaped like the AWS HealthLake
// sample (aws-samples/aws-healthlake-smart-on-fhir, lambda/check-token.js):
// it asks the outside identity provider about the bearer token with RFC 7662
// introspection, authenticating with client credentials kept in the
// project's secrets (Ward passes them as event.secrets), and answers the
// HealthLake shape {authPayload, roleId} naming a Ward role.
//
// Secrets it reads:
//   IDP_INTROSPECTION_URL  the IdP's introspection endpoint
//   IDP_CLIENT_ID, IDP_CLIENT_SECRET  Ward's credentials at the IdP
//   AUTHORIZER_ROLE_ID     the Ward role granted to accepted tokens
//   AUTHORIZER_LOCAL       "true": decide locally from the token's own
//                          claims, without an IdP (the benchmark's mode,
//                          which measures Ward and the worker, not an IdP)
exports.index = async (event) => {
  if (!event.bearerToken) {
    // Not an authorizer call: /zambda/{id}/execute, used to start the worker.
    return { statusCode: 200, body: JSON.stringify({ warm: true }) };
  }
  const secrets = event.secrets || {};
  const token = String(event.bearerToken).replace(/^Bearer\s+/i, '');
  const info = secrets.AUTHORIZER_LOCAL === 'true' ? localClaims(token, event.datastoreEndpoint) : await introspect(secrets, token);

  // Test hooks: the fake IdP marks tokens for which this function must fail,
  // so the tests can show that Ward fails closed and recovers.
  if (info.ward_test === 'crash') process.exit(7);
  if (info.ward_test === 'throw') throw new Error('the authorizer failed on purpose');

  if (info.active !== true) {
    // RFC 7662: an inactive token's answer carries nothing else.
    return { authPayload: { isAuthorized: false }, roleId: secrets.AUTHORIZER_ROLE_ID };
  }
  return {
    authPayload: {
      iss: info.iss,
      aud: info.aud, // passed through: Ward checks it is this FHIR base
      iat: info.iat,
      nbf: info.nbf ?? info.iat,
      exp: info.exp,
      isAuthorized: true,
      scope: info.scope,
      sub: info.sub,
      fhirUser: info.fhirUser,
      patient: info.patient,
    },
    roleId: secrets.AUTHORIZER_ROLE_ID,
  };
};

async function introspect(secrets, token) {
  const basic = Buffer.from(`${secrets.IDP_CLIENT_ID}:${secrets.IDP_CLIENT_SECRET}`).toString('base64');
  const res = await fetch(secrets.IDP_INTROSPECTION_URL, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
  });
  if (!res.ok) throw new Error(`introspection answered ${res.status}`);
  return res.json();
}

// localClaims accepts any JWT whose payload says it is for this FHIR base
// (no signature check: benchmark mode only).
function localClaims(token, datastoreEndpoint) {
  const parts = token.split('.');
  if (parts.length !== 3) return { active: false };
  const c = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  const now = Math.floor(Date.now() / 1000);
  return {
    active: true,
    iss: c.iss,
    aud: c.aud || datastoreEndpoint,
    iat: c.iat || now,
    exp: c.exp || now + 3600,
    scope: c.scope || 'system/*.rs',
    sub: c.sub,
  };
}
