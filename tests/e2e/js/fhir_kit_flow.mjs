// The npm fhir-kit-client (no one here wrote it) against the running gateway: search, nextPage, read,
// create, and a 404 read that must yield an OperationOutcome. Prints one JSON line: {ok, steps: {...}}.
import { Client } from 'fhir-kit-client';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`missing ${k}`); return v; };
const client = new Client({ baseUrl: env('FHIR_BASE'), customHeaders: { 'X-Parse-Session-Token': env('PHR_TOKEN') } });
const patientId = env('PATIENT_ID');
const steps = {};
const bodies = [];

async function step(name, fn) {
  try {
    steps[name] = { ok: true, value: await fn() };
  } catch (e) {
    steps[name] = { ok: false, error: String(e && e.stack || e) };
  }
}
const check = (cond, msg) => { if (!cond) throw new Error(msg); };

await step('search', async () => {
  const bundle = await client.search({ resourceType: 'Observation',
    searchParams: { subject: `Patient/${patientId}`, _count: '10', _sort: 'date' } });
  bodies.push(bundle);
  check(bundle.resourceType === 'Bundle' && bundle.type === 'searchset', 'not a searchset');
  check(bundle.total === 25, `total ${bundle.total}`);
  check(bundle.entry.length === 10, `page of ${bundle.entry.length}`);
  let page = bundle;
  const ids = bundle.entry.map((e) => e.resource.id);
  let pages = 1;
  while ((page = await client.nextPage({ bundle: page }))) {
    bodies.push(page);
    pages += 1;
    ids.push(...(page.entry || []).map((e) => e.resource.id));
    check(pages < 10, 'too many pages');
  }
  check(new Set(ids).size === 25 && ids.length === 25, `walked ${ids.length} ids over ${pages} pages`);
  return { pages, ids: ids.length };
});

await step('read', async () => {
  const patient = await client.read({ resourceType: 'Patient', id: patientId });
  bodies.push(patient);
  check(patient.id === patientId, 'wrong patient');
  return patient.name[0].family;
});

await step('create', async () => {
  const created = await client.create({ resourceType: 'Observation', body: {
    resourceType: 'Observation', status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '2339-0', display: 'Glucose [Mass/volume] in Blood' }], text: 'Glucose' },
    subject: { reference: `Patient/${patientId}` }, effectiveDateTime: '2025-06-01',
    valueQuantity: { value: 101, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' } } });
  bodies.push(created);
  check(created.id && created.meta.versionId === '1', 'no id/version');
  const again = await client.read({ resourceType: 'Observation', id: created.id });
  check(again.valueQuantity.value === 101, 'read back differs');
  return created.id;
});

await step('read 404 yields an OperationOutcome', async () => {
  try {
    await client.read({ resourceType: 'Observation', id: 'nosuchid00' });
  } catch (e) {
    const status = e.response && e.response.status;
    const data = e.response && e.response.data;
    check(status === 404, `status ${status}`);
    check(data && data.resourceType === 'OperationOutcome', `body ${JSON.stringify(data)}`);
    bodies.push(data);
    return data.issue[0].code;
  }
  throw new Error('no error for a missing resource');
});

const ok = Object.values(steps).every((s) => s.ok);
process.stdout.write(`${JSON.stringify({ ok, steps, bodies })}\n`);
process.exitCode = ok ? 0 : 1;
