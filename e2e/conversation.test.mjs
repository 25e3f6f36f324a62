// Conversations end to end: the published @oystehr/sdk's conversation.*
// against a real `ward serve`, and Ward's live stream (Server-Sent Events)
// read with fetch. The Go test (conversation_test.go) starts the server
// and signs in the users whose tokens and profiles it passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, projectApiUrl, rejects, sdk, token } from './sdklib.mjs';

const projectId = env('WARD_PROJECT_ID');
const admin = sdk(await token(env('WARD_CLIENT_ID'), env('WARD_CLIENT_SECRET')), projectId);
const user = (k) => ({ sdk: sdk(env(`WARD_${k}_TOKEN`), projectId), profile: env(`WARD_${k}_PROFILE`) });
const doc = user('DOC');
const pat = user('PAT');
const other = user('OTHER');
const nochat = user('NOCHAT');
// With replicas, streams open on another replica than the API calls go to.
const streamBase = process.env.WARD_STREAM_URL ? `${process.env.WARD_STREAM_URL}/v1` : projectApiUrl;

// stream opens the live channel of conversation id with a conversation
// token; next() resolves with the next event ({event, id, data}) or null
// once the server ends the stream.
async function stream(id, tok, lastEventId) {
  const headers = { authorization: `Bearer ${tok}` };
  if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
  const res = await fetch(`${streamBase}/messaging/conversation/${id}/stream`, { headers });
  if (res.status !== 200) return { status: res.status, body: await res.json() };
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const next = async () => {
    for (;;) {
      const end = buf.indexOf('\n\n');
      if (end >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const ev = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const i = line.indexOf(': ');
          ev[line.slice(0, i)] = line.slice(i + 2);
        }
        if (!ev.event) continue; // a comment: open, keepalive
        ev.data = JSON.parse(ev.data);
        return ev;
      }
      const { value, done } = await reader.read();
      if (done) return null;
      buf += decoder.decode(value, { stream: true });
    }
  };
  // A missing event fails within 10 s rather than at the runner's timeout.
  const nextOrTimeout = () => {
    let timer;
    const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('no event within 10 s')), 10_000); });
    return Promise.race([next(), late]).finally(() => clearTimeout(timer));
  };
  return { status: 200, next: nextOrTimeout, close: () => reader.cancel() };
}

test('two users chat live, a third is refused, history is FHIR, removal stops delivery', async () => {
  const { encounter } = await admin.conversation.create({
    encounter: {
      resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR' },
      participant: [doc, pat, other].map((u) => ({ individual: { reference: u.profile } })),
    },
  });
  const id = admin.conversation.getConversationIdFromEncounter(encounter);
  assert.equal(id, encounter.id);
  assert.equal((await admin.fhir.get({ resourceType: 'Encounter', id })).id, id);
  await admin.conversation.addParticipant({
    conversationId: id, encounterReference: `Encounter/${id}`,
    participants: [doc, pat].map((u) => ({ participantReference: u.profile, channel: 'chat' })),
  });

  const tokens = {};
  for (const [k, u] of Object.entries({ doc, pat, other })) tokens[k] = (await u.sdk.conversation.getToken()).token;
  const docS = await stream(id, tokens.doc);
  const patS = await stream(id, tokens.pat);
  assert.equal(docS.status, 200);
  assert.equal(patS.status, 200);
  // In the Encounter but not in the chat: refused.
  const otherS = await stream(id, tokens.other);
  assert.equal(otherS.status, 403);
  assert.match(otherS.body.message, /not a member/);
  // An API access token is not a conversation token.
  assert.equal((await stream(id, env('WARD_DOC_TOKEN'))).status, 401);
  // Without the policy's action: 403 from the SDK.
  await rejects(nochat.sdk.conversation.getToken(), 403, /Messaging:GetConversationToken/);
  await rejects(nochat.sdk.conversation.message({ conversationId: id, message: 'x' }), 403, /Messaging:ConversationSendMessage/);

  await doc.sdk.conversation.message({ conversationId: id, message: 'How are you feeling?', attributes: { urgent: false } });
  for (const s of [docS, patS]) {
    const ev = await s.next();
    assert.equal(ev.event, 'message');
    assert.equal(ev.data.body, 'How are you feeling?');
    assert.equal(ev.data.author, doc.profile);
    assert.deepEqual(ev.data.attributes, { urgent: false });
  }
  await pat.sdk.conversation.message({ conversationId: id, message: 'Better, thanks' });
  assert.equal((await docS.next()).data.author, pat.profile);
  assert.equal((await patS.next()).data.body, 'Better, thanks');

  // The history: Communications of the Encounter, paged like any search.
  const page1 = await admin.fhir.search({ resourceType: 'Communication', params: [
    { name: 'encounter', value: `Encounter/${id}` }, { name: '_sort', value: 'sent' }, { name: '_count', value: '1' }] });
  const first = page1.unbundle();
  assert.equal(first.length, 1);
  assert.equal(first[0].payload[0].contentString, 'How are you feeling?');
  assert.deepEqual(first[0].sender, { reference: doc.profile });
  assert.deepEqual(first[0].recipient, [{ reference: pat.profile }]);
  assert.deepEqual(first[0].partOf, [{ reference: `Encounter/${id}` }]);
  assert.ok(page1.link.some((l) => l.relation === 'next'), 'a next page');
  const all = (await admin.fhir.search({ resourceType: 'Communication', params: [{ name: 'part-of', value: `Encounter/${id}` }] })).unbundle();
  assert.equal(all.length, 2);

  await admin.conversation.removeParticipant({ conversationId: id, encounterReference: `Encounter/${id}`, participantReference: pat.profile });
  assert.equal((await patS.next()).event, 'removed');
  assert.equal(await patS.next(), null, 'the removed member\'s stream ends');
  await doc.sdk.conversation.message({ conversationId: id, message: 'still there?' });
  const still = await docS.next();
  assert.equal(still.data.body, 'still there?');
  assert.equal(still.id, String(still.data.seq), 'the event id is the message number');
  assert.equal(still.data.seq, 3);
  assert.equal((await stream(id, tokens.pat)).status, 403);

  // A reconnect with Last-Event-ID gets what it missed, in order, then live.
  docS.close();
  await doc.sdk.conversation.message({ conversationId: id, message: 'missed 1' });
  await doc.sdk.conversation.message({ conversationId: id, message: 'missed 2' });
  const again = await stream(id, tokens.doc, still.id);
  assert.equal(again.status, 200);
  for (const [seq, body] of [[4, 'missed 1'], [5, 'missed 2']]) {
    const ev = await again.next();
    assert.deepEqual([ev.id, ev.data.body], [String(seq), body]);
  }
  await doc.sdk.conversation.message({ conversationId: id, message: 'live again' });
  assert.deepEqual(await again.next().then((ev) => [ev.id, ev.data.body]), ['6', 'live again']);
  const bad = await stream(id, tokens.doc, 'not-a-number');
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /Last-Event-ID/);

  // Hostile bodies.
  await rejects(doc.sdk.conversation.message({ conversationId: id, message: 'x'.repeat(1601) }), 400, /limit is 1600/);
  await rejects(doc.sdk.conversation.message({ conversationId: 'no-such', message: 'x' }), 404);
  await rejects(admin.conversation.addParticipant({ conversationId: id, encounterReference: `Encounter/${id}`,
    participants: [{ participantReference: 'Patient/unknown', channel: 'chat' }] }), 400, /Encounter.participant/);
  again.close();
});
