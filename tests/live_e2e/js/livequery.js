// Parse JS SDK LiveQuery client against the real server (tests/live_e2e/test_livequery_sdk.py).
//
// Alice and Bob each open a LiveQueryClient (their own session token) and subscribe to Allergy (Alice for
// her profile, Bob for the whole class); Alice also subscribes watching only `severity`. Once the
// subscriptions are confirmed, this script changes Alice's allergy's note through the FHIR API
// (PUT /fhir/AllergyIntolerance/<id> with X-Parse-Session-Token), then waits. It prints one JSON line: what
// each client received (with the `original` the SDK hands to update listeners), and how long Alice's event
// took.
'use strict';

const Parse = require('parse/node');

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`missing environment variable ${name}`);
  return v;
}

const SERVER = env('PHR_E2E_URL');
const WS = SERVER.replace(/^http/, 'ws') + '/parse';
const APP_ID = env('PHR_E2E_APP_ID');
const JS_KEY = env('PHR_E2E_JS_KEY');
const ALICE = env('PHR_E2E_ALICE_TOKEN');
const BOB = env('PHR_E2E_BOB_TOKEN');
const PROFILE = env('PHR_E2E_PROFILE_ID');
const ALLERGY = env('PHR_E2E_ALLERGY_ID');
const WAIT_MS = Number(process.env.PHR_E2E_WAIT_MS || 3000);

Parse.initialize(APP_ID, JS_KEY);
Parse.serverURL = SERVER + '/parse';
Parse.liveQueryServerURL = WS;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  return Promise.race([promise, sleep(ms).then(() => { throw new Error(`${what}: no answer within ${ms} ms`); })]);
}

async function listen(token, query, label, out) {
  const client = new Parse.LiveQueryClient({ applicationId: APP_ID, serverURL: WS, javascriptKey: JS_KEY,
                                            sessionToken: token });
  client.on('error', (e) => out.errors.push(`${label}: ${e && e.message ? e.message : e}`));
  client.open();
  const subscription = client.subscribe(query, token);
  for (const op of ['create', 'update', 'enter', 'leave', 'delete']) {
    // The SDK passes (object, original, response) when the server sent `original`, else (object, response).
    subscription.on(op, (object, second) => {
      const original = second && typeof second.get === 'function' ? second : null;
      out.events.push({ op, objectId: object.id, className: object.className, notes: object.get('notes'),
                        substance: object.get('substance'),
                        ms: out.changedAt ? Date.now() - out.changedAt : null,
                        original: original && { id: original.id, notes: original.get('notes') ?? null } });
    });
  }
  await withTimeout(subscription.subscribePromise, 5000, `${label} subscribe`);
  return client;
}

async function main() {
  const alice = { events: [], errors: [] };
  const bob = { events: [], errors: [] };
  const watching = { events: [], errors: [] };
  const profile = Parse.Object.extend('Profile').createWithoutData(PROFILE);
  const aliceQuery = new Parse.Query('Allergy').equalTo('profile', profile);
  const bobQuery = new Parse.Query('Allergy');
  const watchQuery = new Parse.Query('Allergy').equalTo('profile', profile).watch('severity');
  const clients = [await listen(ALICE, aliceQuery, 'alice', alice), await listen(BOB, bobQuery, 'bob', bob),
                   await listen(ALICE, watchQuery, 'watching', watching)];

  const headers = { 'X-Parse-Session-Token': ALICE, 'Content-Type': 'application/fhir+json' };
  const url = `${SERVER}/fhir/AllergyIntolerance/${ALLERGY}`;
  const current = await (await fetch(url, { headers })).json();
  current.note = [{ text: 'changed through FHIR' }];
  alice.changedAt = bob.changedAt = watching.changedAt = Date.now();
  const put = await fetch(url, { method: 'PUT', headers, body: JSON.stringify(current) });
  const putStatus = put.status;
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline && alice.events.length === 0) await sleep(10);
  await sleep(1000); // anything for Bob would have come by now
  for (const c of clients) await c.close();
  const strip = (o) => ({ events: o.events, errors: o.errors });
  const result = { ok: true, putStatus, alice: strip(alice), bob: strip(bob), watching: strip(watching) };
  console.log(JSON.stringify(result));
}

main().then(() => process.exit(0), (e) => {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
