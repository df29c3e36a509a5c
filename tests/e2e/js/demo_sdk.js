// A new user's first contact: the README's snippet (any application id, no keys) against a server that
// `phr-gateway demo` + `phr-gateway serve` made from nothing. The demo patient finds her profiles and
// allergies; the demo doctor sees only what she shared with him (allergies, medications, labs of one profile).
//
// Environment: PHR_E2E_SERVER_URL (…/parse). Prints the harness's JSON result as its last line.
'use strict';

const { Parse, env, step, finish, expect, expectEqual, expectParseError, names, as } = require('./harness');

Parse.initialize('phr'); // as the README shows: any application id, keys are checked only when configured
Parse.serverURL = env('PHR_E2E_SERVER_URL');
Parse.User.enableUnsafeCurrentUser();

const S = {};
const count = (cls, token, build = (q) => q) => build(new Parse.Query(cls)).count(as(token));

async function main() {
  await step('demo patient logIn', async () => {
    const user = await Parse.User.logIn('demo', 'demo-password');
    expectEqual(user.get('role'), 'patient', 'role');
    const me = await Parse.User.me(user.getSessionToken());
    expectEqual(me.id, user.id, 'Parse.User.me');
    S.patient = user;
    S.token = user.getSessionToken();
    return { id: user.id };
  });

  await step('demo patient finds her profiles', async () => {
    const profiles = await new Parse.Query('Profile').equalTo('user', S.patient).ascending('fullName').find(as(S.token));
    expectEqual(names(profiles, 'fullName'), ['Alex Demo', 'Sam Demo'], 'profiles');
    S.alex = profiles[0];
    S.sam = profiles[1];
    return { profiles: names(profiles, 'fullName') };
  });

  await step('demo patient finds her allergies', async () => {
    const alex = await new Parse.Query('Allergy').equalTo('profile', S.alex).ascending('substance').find(as(S.token));
    expectEqual(names(alex, 'substance'), ['Peanut', 'Penicillin'], "Alex's allergies");
    expectEqual(names(alex, 'severity'), ['severe', 'moderate'], 'severities');
    expectEqual(names(alex, 'isActive'), [true, false], 'isActive');
    const sam = await new Parse.Query('Allergy').equalTo('profile', S.sam).find(as(S.token));
    expectEqual(names(sam, 'substance'), ['Cat dander'], "Sam's allergies");
    const withProfile = await new Parse.Query('Allergy').include('profile').descending('substance').find(as(S.token));
    expectEqual(withProfile.map((a) => a.get('profile').get('fullName')), ['Alex Demo', 'Alex Demo', 'Sam Demo'],
      'included profiles');
    S.peanut = alex[0];
    return { alex: names(alex, 'substance'), sam: names(sam, 'substance') };
  });

  await step('demo patient sees her whole record', async () => {
    const counts = {};
    for (const cls of ['Vaccination', 'Medication', 'LabResult', 'MedicalDocument', 'EmergencyContact', 'SharedAccess']) {
      counts[cls] = await count(cls, S.token);
    }
    expectEqual(counts, { Vaccination: 3, Medication: 2, LabResult: 3, MedicalDocument: 1, EmergencyContact: 1,
      SharedAccess: 1 }, 'counts');
    const doc = await new Parse.Query('MedicalDocument').first(as(S.token));
    const r = await fetch(doc.get('file').url());
    expectEqual(r.status, 200, 'download of the demo lab report');
    expect((await r.text()).includes('HbA1c'), 'lab report content');
    return counts;
  });

  await step('demo doctor logIn', async () => {
    const user = await Parse.User.logIn('dr.demo', 'demo-password');
    expectEqual(user.get('role'), 'provider', 'role');
    S.drToken = user.getSessionToken();
    return { id: user.id };
  });

  await step('demo doctor sees only the shared categories', async () => {
    const counts = {};
    for (const cls of ['Profile', 'Allergy', 'Medication', 'LabResult', 'Vaccination', 'MedicalDocument',
      'EmergencyContact']) {
      counts[cls] = await count(cls, S.drToken);
    }
    expectEqual(counts, { Profile: 1, Allergy: 2, Medication: 2, LabResult: 3, Vaccination: 0, MedicalDocument: 0,
      EmergencyContact: 0 }, 'what the doctor sees');
    const profile = await new Parse.Query('Profile').first(as(S.drToken));
    expectEqual(profile.get('fullName'), 'Alex Demo', 'the shared profile');
    await expectParseError(new Parse.Query('Profile').get(S.sam.id, as(S.drToken)), 101, "the child's profile");
    const allergies = await new Parse.Query('Allergy').ascending('substance').find(as(S.drToken));
    expectEqual(names(allergies, 'substance'), ['Peanut', 'Penicillin'], 'allergies');
    // The lab result points at a document the doctor may not see: include leaves it a bare pointer.
    const lab = await new Parse.Query('LabResult').equalTo('testName', 'Hemoglobin A1c').include('attachment')
      .first(as(S.drToken));
    const att = lab.get('attachment');
    expect(att && att.get('title') === undefined && att.get('file') === undefined,
      `an unshared document leaked through include: ${JSON.stringify(att && att.toJSON())}`);
    return counts;
  });

  await step('demo doctor cannot change what is shared read-only', async () => {
    const a = Parse.Object.extend('Allergy').createWithoutData(S.peanut.id);
    a.set('severity', 'mild');
    await expectParseError(a.save(null, as(S.drToken)), 101, 'doctor updates an allergy');
    const again = await new Parse.Query('Allergy').get(S.peanut.id, as(S.token));
    expectEqual(again.get('severity'), 'severe', 'unchanged');
    return { ok: true };
  });

  await step('logOut', async () => {
    await Parse.User.logOut();
    expectEqual(Parse.User.current(), null, 'no current user');
    return { ok: true };
  });
}

finish(main);
