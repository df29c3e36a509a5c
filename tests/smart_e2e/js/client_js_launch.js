// A SMART app written with the npm `fhirclient` (client-js), running in Node: GET /launch starts a
// standalone launch (PKCE required) against ISS; our authorize pages redirect back to /callback, where
// client-js exchanges the code and reads the record. Prints one JSON line on stdout when done, then exits.
"use strict";

const http = require("http");
const smart = require("fhirclient");

const ISS = process.env.ISS;
const CLIENT_ID = process.env.CLIENT_ID;
const SCOPE = process.env.SCOPE;
const PORT = Number(process.env.APP_PORT);

// client-js keeps the launch state in a storage; a Map is enough for one launch in one process.
const store = new Map();
const storage = {
  async get(key) { return store.get(key); },
  async set(key, value) { store.set(key, value); return value; },
  async unset(key) { return store.delete(key); },
};

function finish(result, code) {
  process.stdout.write(JSON.stringify(result) + "\n");
  setTimeout(() => process.exit(code), 50);
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.url.startsWith("/launch")) {
      await smart(req, res, storage).authorize({
        clientId: CLIENT_ID, scope: SCOPE, redirectUri: "/callback", iss: ISS, pkceMode: "required",
      });
      return;
    }
    if (req.url.startsWith("/callback")) {
      const client = await smart(req, res, storage).ready();
      const patient = await client.patient.read();
      const labs = await client.request(`Observation?patient=${client.patient.id}`, { flat: true });
      const other = process.env.OTHER_PATIENT
        ? await client.request(`Observation?patient=${process.env.OTHER_PATIENT}`, { flat: true }) : [];
      const result = {
        ok: true,
        patient: client.patient.id,
        patientName: patient.name && patient.name[0] && patient.name[0].text,
        labs: labs.length,
        otherLabs: other.length,
        scope: client.state.tokenResponse.scope,
        fhirUser: client.getFhirUser(),
        hasRefresh: Boolean(client.state.tokenResponse.refresh_token),
        needPatientBanner: client.state.tokenResponse.need_patient_banner,
      };
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(result));
      finish(result, 0);
      return;
    }
    res.writeHead(404);
    res.end();
  } catch (e) {
    res.writeHead(500);
    res.end(String(e));
    finish({ ok: false, error: String(e && e.stack || e) }, 1);
  }
});

server.listen(PORT, "127.0.0.1", () => process.stderr.write(`listening on ${PORT}\n`));
setTimeout(() => finish({ ok: false, error: "timed out" }, 2), 60000);
