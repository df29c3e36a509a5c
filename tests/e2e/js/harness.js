// Shared harness of the e2e Node scripts: steps, expectations, the JSON result line, an optional HTTP trace.
//
// A script calls `step(name, fn)` for each step (in order; a failed step does not stop the rest, so one run
// reports every problem), then `finish(main)`, which prints {"ok", "order", "steps": {name: {ok, value|error}}}
// as the LAST line of stdout and sets a non-zero exit code when any expectation failed.
'use strict';

const Parse = require('parse/node');

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`missing environment variable ${name}`);
  return v;
}

if (process.env.PHR_E2E_TRACE) {
  // Debugging aid: every HTTP exchange on stderr (the SDK uses the global fetch).
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, opts = {}) => {
    const r = await realFetch(url, opts);
    const body = await r.clone().text();
    process.stderr.write(`>> ${opts.method || 'GET'} ${url} ${opts.body ? String(opts.body).slice(0, 400) : ''}\n`
      + `<< ${r.status} ${body.slice(0, 600)}\n`);
    return r;
  };
}

const results = { ok: true, order: [], steps: {} };

class Expectation extends Error {}

function expect(cond, message) {
  if (!cond) throw new Expectation(message);
}

function expectEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Expectation(`${what}: expected ${e}, got ${a}`);
}

/** Await `promise`, which must reject with a Parse.Error whose code is one of `codes`; returns that code. */
async function expectParseError(promise, codes, what) {
  const allowed = Array.isArray(codes) ? codes : [codes];
  let value;
  try {
    value = await promise;
  } catch (e) {
    if (!(e instanceof Parse.Error) || !allowed.includes(e.code)) {
      throw new Expectation(`${what}: expected Parse error ${allowed.join('|')}, got ${e && e.code} ${e && e.message}`);
    }
    return e.code;
  }
  const shown = value && value.toJSON ? value.toJSON() : value;
  throw new Expectation(`${what}: expected Parse error ${allowed.join('|')}, but it succeeded: ${JSON.stringify(shown)}`);
}

async function step(name, fn) {
  results.order.push(name);
  try {
    const value = await fn();
    results.steps[name] = { ok: true, value: value === undefined ? null : value };
  } catch (e) {
    results.ok = false;
    results.steps[name] = {
      ok: false,
      error: {
        kind: e instanceof Expectation ? 'expectation' : e instanceof Parse.Error ? 'ParseError' : (e && e.name) || 'Error',
        code: e && e.code !== undefined ? e.code : null,
        message: String((e && e.message) || e),
        stack: e instanceof Expectation ? undefined : String((e && e.stack) || '').split('\n').slice(0, 6).join('\n'),
      },
    };
  }
}

function finish(main) {
  main()
    .catch((e) => {
      results.ok = false;
      results.steps.__main__ = { ok: false, error: { kind: 'crash', message: String((e && e.stack) || e) } };
      results.order.push('__main__');
    })
    .finally(() => {
      process.stdout.write(`\n${JSON.stringify(results)}\n`);
      process.exitCode = results.ok ? 0 : 1;
    });
}

const day = (iso) => new Date(`${iso}T00:00:00.000Z`);
const ids = (objs) => objs.map((o) => o.id).sort();
const names = (objs, key) => objs.map((o) => o.get(key));
const as = (token) => ({ sessionToken: token });

module.exports = { Parse, env, step, finish, expect, expectEqual, expectParseError, Expectation, day, ids, names, as };
