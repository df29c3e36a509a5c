// The Parse JS SDK (npm `parse`, the project's package.json) against the running gateway: issue 2's "Done when".
//
// Environment: PHR_E2E_SERVER_URL (…/parse), PHR_E2E_APP_ID, PHR_E2E_JS_KEY, PHR_E2E_RUN_ID (unique suffix),
// PHR_E2E_PROVIDER_USERNAME / PHR_E2E_PROVIDER_PASSWORD / PHR_E2E_PROVIDER_USER_ID (a provider account made
// by the test with `phr-gateway users create --role provider`), PHR_E2E_PROVIDER_ID (its Provider record).
//
// Prints one JSON object on its last line: {"ok": bool, "order": [step names], "steps": {name: {ok, value|error}}}
// and exits non-zero when any expectation failed. Steps run in order; a failed step does not stop the rest,
// so one run reports every problem (the pytest side names the first failing step).
'use strict';

const {
  Parse, env, step, finish, expect, expectEqual, expectParseError, day, ids, names, as,
} = require('./harness');

const SERVER_URL = env('PHR_E2E_SERVER_URL');
const RUN = env('PHR_E2E_RUN_ID');
const PROVIDER_USERNAME = env('PHR_E2E_PROVIDER_USERNAME');
const PROVIDER_PASSWORD = env('PHR_E2E_PROVIDER_PASSWORD');
const PROVIDER_USER_ID = env('PHR_E2E_PROVIDER_USER_ID');
const PROVIDER_ID = env('PHR_E2E_PROVIDER_ID');

Parse.initialize(env('PHR_E2E_APP_ID'), process.env.PHR_E2E_JS_KEY || undefined);
Parse.serverURL = SERVER_URL;
Parse.User.enableUnsafeCurrentUser(); // Node: keep the signed-in user in memory, as a browser app would

const S = {}; // state shared between steps

// AuditLog is not here: a user reads the audit rows of their own actions (their signup, their logins).
const ALL_CLASSES = ['Profile', 'Allergy', 'Medication', 'LabResult', 'Vaccination', 'EmergencyContact',
  'MedicalDocument', 'SharedAccess'];
const NOTE_TEXT = `Visit note ${RUN}\nBP 120/80, no acute distress.\n`;

async function main() {
  // ---------------------------------------------------------------- users and sessions
  await step('signUp', async () => {
    const user = new Parse.User();
    user.set({ username: `alice_${RUN}`, password: 'alice-pw-1', email: `alice_${RUN}@example.org` });
    await user.signUp();
    expect(user.id && user.id.length === 10, `objectId ${user.id}`);
    expect(/^r:/.test(user.getSessionToken() || ''), `session token ${user.getSessionToken()}`);
    expectEqual(Parse.User.current() && Parse.User.current().id, user.id, 'current user after signUp');
    S.aliceId = user.id;
    return { id: user.id };
  });

  await step('signUp duplicate username rejected', async () => {
    const dup = new Parse.User();
    dup.set({ username: `alice_${RUN}`, password: 'whatever-1' });
    return { code: await expectParseError(dup.signUp(), 202, 'duplicate signUp') };
  });

  await step('logIn wrong password rejected', async () => ({
    code: await expectParseError(Parse.User.logIn(`alice_${RUN}`, 'wrong-password'), 101, 'logIn wrong password'),
  }));

  await step('logIn', async () => {
    const user = await Parse.User.logIn(`alice_${RUN}`, 'alice-pw-1');
    expectEqual(user.id, S.aliceId, 'logged-in user id');
    expectEqual(user.get('username'), `alice_${RUN}`, 'username');
    expect(/^r:/.test(user.getSessionToken() || ''), 'r: session token');
    S.alice = user;
    S.aliceToken = user.getSessionToken();
    return { id: user.id };
  });

  await step('Parse.User.me', async () => {
    const me = await Parse.User.me(S.aliceToken);
    expectEqual(me.id, S.aliceId, 'me.id');
    expectEqual(me.get('username'), `alice_${RUN}`, 'me.username');
    expectEqual(me.get('email'), `alice_${RUN}@example.org`, 'me.email');
    expect(me.get('password') === undefined, 'password is never returned');
    return { id: me.id, role: me.get('role') ?? null };
  });

  await step('currentAsync + fetch', async () => {
    const current = await Parse.User.currentAsync();
    expect(current, 'a current user');
    expectEqual(current.id, S.aliceId, 'currentAsync id');
    const fetched = await current.fetch();
    expectEqual(fetched.get('username'), `alice_${RUN}`, 'fetched username');
    expect(fetched.isCurrent(), 'fetched user is current');
    const session = await Parse.Session.current();
    expectEqual(session.getSessionToken(), S.aliceToken, 'Session.current token');
    return { id: fetched.id };
  });

  // ---------------------------------------------------------------- Profile and Allergy with pointers and ACLs
  await step('save Profile with pointer and ACL', async () => {
    const acl = new Parse.ACL(S.alice);
    expect(!acl.getPublicReadAccess(), 'owner ACL is not public');
    const profile = new Parse.Object('Profile');
    profile.set({ user: S.alice, fullName: `Alice ${RUN}`, birthDate: day('1985-02-03'), gender: 'female', bloodType: 'A+' });
    profile.setACL(acl);
    await profile.save();
    expect(profile.id && profile.createdAt instanceof Date, 'saved profile has id and createdAt');
    const back = await new Parse.Query('Profile').get(profile.id);
    expectEqual(back.get('user').id, S.aliceId, 'profile.user pointer');
    expectEqual(back.get('birthDate').toISOString(), '1985-02-03T00:00:00.000Z', 'birthDate');
    expect(back.getACL().getReadAccess(S.aliceId) && back.getACL().getWriteAccess(S.aliceId), 'owner in ACL');
    expect(!back.getACL().getPublicReadAccess(), 'ACL not public');
    S.profile = back;

    const child = new Parse.Object('Profile');
    child.set({ user: S.alice, fullName: `Kid ${RUN}`, birthDate: day('2016-09-30') });
    child.setACL(new Parse.ACL(S.alice));
    await child.save();
    S.child = child;
    return { profile: profile.id, child: child.id, acl: back.getACL().toJSON() };
  });

  await step('save Allergy with pointer and ACL', async () => {
    const allergy = new Parse.Object('Allergy');
    allergy.set({
      profile: S.profile, substance: 'Shellfish', severity: 'moderate', reaction: 'Hives',
      recordedAt: day('2019-07-07'), isActive: true,
    });
    allergy.setACL(new Parse.ACL(S.alice));
    await allergy.save();
    const back = await new Parse.Query('Allergy').get(allergy.id);
    expectEqual(back.get('profile').id, S.profile.id, 'allergy.profile pointer');
    expectEqual(back.get('profile').className, 'Profile', 'pointer class');
    expectEqual(back.get('recordedAt').toISOString(), '2019-07-07T00:00:00.000Z', 'recordedAt');
    expect(back.getACL().getReadAccess(S.aliceId), 'owner ACL');
    S.shellfish = back;
    return { id: allergy.id };
  });

  await step('Parse.Object.saveAll', async () => {
    const mk = (profile, substance, severity, reaction, recorded) => {
      const a = new Parse.Object('Allergy');
      a.set({ profile, substance, severity, reaction, recordedAt: day(recorded) });
      a.setACL(new Parse.ACL(S.alice));
      return a;
    };
    const allergies = [
      mk(S.profile, 'Peanut', 'severe', 'Anaphylaxis', '2020-01-01'),
      mk(S.profile, 'Latex', 'mild', 'Rash', '2021-06-01'),
      mk(S.profile, 'Penicillin', 'moderate', 'Hives', '2023-03-01'),
      mk(S.child, 'Cat dander', 'mild', 'Sneezing', '2022-05-05'),
    ];
    const med = new Parse.Object('Medication');
    med.set({ profile: S.profile, name: 'Metformin', dose: '500 mg', frequency: 'twice daily', active: true });
    const lab = new Parse.Object('LabResult');
    lab.set({ profile: S.profile, testName: 'Glucose', value: 98, units: 'mg/dL', date: day('2025-09-20') });
    const vac = new Parse.Object('Vaccination');
    vac.set({ profile: S.profile, vaccineName: 'Influenza', dateAdministered: day('2025-10-15') });
    const contact = new Parse.Object('EmergencyContact');
    contact.set({ profile: S.profile, name: 'Jordan', relationship: 'spouse', phone: '+1 555 0199' });
    const saved = await Parse.Object.saveAll([...allergies, med, lab, vac, contact]);
    expectEqual(saved.length, 8, 'saveAll count');
    expect(saved.every((o) => o.id && o.createdAt), 'every object got an id and createdAt');
    S.allergies = allergies;
    S.peanut = allergies[0];
    S.others = { Medication: med, LabResult: lab, Vaccination: vac, EmergencyContact: contact };
    return { ids: saved.map((o) => `${o.className}:${o.id}`) };
  });

  // ---------------------------------------------------------------- queries
  await step('query equalTo pointer', async () => {
    const found = await new Parse.Query('Allergy').equalTo('profile', S.profile).find();
    expectEqual(names(found, 'substance').sort(), ['Latex', 'Peanut', 'Penicillin', 'Shellfish'], 'substances');
    const kid = await new Parse.Query('Allergy').equalTo('profile', S.child).find();
    expectEqual(names(kid, 'substance'), ['Cat dander'], 'child substances');
    return { n: found.length };
  });

  await step('query containedIn', async () => {
    const bySeverity = await new Parse.Query('Allergy').containedIn('severity', ['mild', 'moderate']).find();
    expectEqual(names(bySeverity, 'substance').sort(), ['Cat dander', 'Latex', 'Penicillin', 'Shellfish'], 'by severity');
    const byProfile = await new Parse.Query('Allergy').containedIn('profile', [S.profile, S.child]).find();
    expectEqual(byProfile.length, 5, 'by profile pointers');
    const byId = await new Parse.Query('Allergy').containedIn('objectId', [S.peanut.id, S.shellfish.id]).find();
    expectEqual(ids(byId), [S.peanut.id, S.shellfish.id].sort(), 'by objectId');
    return { bySeverity: bySeverity.length, byProfile: byProfile.length };
  });

  await step('query greaterThan date', async () => {
    const found = await new Parse.Query('Allergy').greaterThan('recordedAt', day('2021-01-01')).find();
    expectEqual(names(found, 'substance').sort(), ['Cat dander', 'Latex', 'Penicillin'], 'recordedAt > 2021');
    const range = await new Parse.Query('Allergy')
      .greaterThanOrEqualTo('recordedAt', day('2020-01-01')).lessThan('recordedAt', day('2022-01-01')).find();
    expectEqual(names(range, 'substance').sort(), ['Latex', 'Peanut'], '2020 <= recordedAt < 2022');
    return { n: found.length };
  });

  await step('query ascending/descending', async () => {
    const asc = await new Parse.Query('Allergy').equalTo('profile', S.profile).ascending('recordedAt').find();
    expectEqual(names(asc, 'substance'), ['Shellfish', 'Peanut', 'Latex', 'Penicillin'], 'ascending recordedAt');
    const desc = await new Parse.Query('Allergy').equalTo('profile', S.profile).descending('recordedAt').find();
    expectEqual(names(desc, 'substance'), ['Penicillin', 'Latex', 'Peanut', 'Shellfish'], 'descending recordedAt');
    const multi = await new Parse.Query('Allergy').ascending('severity').addDescending('substance').find();
    expectEqual(names(multi, 'substance'), ['Latex', 'Cat dander', 'Shellfish', 'Penicillin', 'Peanut'],
      'severity asc, substance desc');
    return { asc: names(asc, 'substance') };
  });

  await step('query limit/skip', async () => {
    const page = await new Parse.Query('Allergy').equalTo('profile', S.profile).ascending('recordedAt')
      .skip(1).limit(2).find();
    expectEqual(names(page, 'substance'), ['Peanut', 'Latex'], 'skip 1 limit 2');
    const last = await new Parse.Query('Allergy').equalTo('profile', S.profile).ascending('recordedAt')
      .skip(3).limit(10).find();
    expectEqual(names(last, 'substance'), ['Penicillin'], 'skip 3');
    const first = await new Parse.Query('Allergy').equalTo('profile', S.profile).descending('recordedAt').first();
    expectEqual(first.get('substance'), 'Penicillin', 'first()');
    return { page: names(page, 'substance') };
  });

  await step('query count', async () => {
    const n = await new Parse.Query('Allergy').equalTo('profile', S.profile).count();
    expectEqual(n, 4, 'count for the profile');
    const all = await new Parse.Query('Allergy').count();
    expectEqual(all, 5, 'count of all allergies');
    const withCount = await new Parse.Query('Allergy').limit(1).withCount().find();
    expectEqual(withCount.count, 5, 'withCount().count');
    expectEqual(withCount.results.length, 1, 'withCount().results');
    return { n, all };
  });

  await step('query include', async () => {
    const found = await new Parse.Query('Allergy').equalTo('objectId', S.peanut.id).include('profile').find();
    expectEqual(found.length, 1, 'one allergy');
    const profile = found[0].get('profile');
    expectEqual(profile.id, S.profile.id, 'included profile id');
    expectEqual(profile.get('fullName'), `Alice ${RUN}`, 'included profile fullName');
    const deep = await new Parse.Query('Allergy').equalTo('objectId', S.peanut.id).include('profile.user').first();
    expectEqual(deep.get('profile').get('user').get('username'), `alice_${RUN}`, 'include profile.user');
    return { fullName: profile.get('fullName') };
  });

  await step('query matchesQuery', async () => {
    const kids = new Parse.Query('Profile').equalTo('fullName', `Kid ${RUN}`);
    const found = await new Parse.Query('Allergy').matchesQuery('profile', kids).find();
    expectEqual(names(found, 'substance'), ['Cat dander'], 'allergies of the matched profile');
    const notKid = await new Parse.Query('Allergy').doesNotMatchQuery('profile', kids).count();
    expectEqual(notKid, 4, 'doesNotMatchQuery');
    return { n: found.length };
  });

  // ---------------------------------------------------------------- files
  await step('Parse.File upload', async () => {
    const file = new Parse.File('visit-note.txt', { base64: Buffer.from(NOTE_TEXT, 'utf8').toString('base64') }, 'text/plain');
    await file.save();
    expect(file.url() && /^https?:\/\//.test(file.url()), `file url ${file.url()}`);
    expect(/visit-note\.txt$/.test(file.name()), `file name ${file.name()}`);
    S.file = file;
    return { name: file.name() };
  });

  await step('MedicalDocument with file', async () => {
    const doc = new Parse.Object('MedicalDocument');
    doc.set({
      profile: S.profile, file: S.file, documentType: 'Visit note', title: 'GP visit', tags: ['visit'],
      isShared: false,
    });
    doc.setACL(new Parse.ACL(S.alice));
    await doc.save();
    const back = await new Parse.Query('MedicalDocument').get(doc.id);
    expect(back.get('file') instanceof Parse.File, 'file field is a Parse.File');
    expectEqual(back.get('file').name(), S.file.name(), 'file name');
    expectEqual(back.get('version'), 1, 'document version');
    expect(back.get('uploadedAt') instanceof Date, 'uploadedAt set by the server');
    S.doc = back;
    return { id: doc.id };
  });

  await step('download file.url()', async () => {
    const r1 = await fetch(S.file.url());
    expectEqual(r1.status, 200, 'status of the upload URL');
    expectEqual(await r1.text(), NOTE_TEXT, 'content of the upload URL');
    const url = S.doc.get('file').url();
    const r2 = await fetch(url);
    expectEqual(r2.status, 200, 'status of the queried document URL');
    expectEqual(await r2.text(), NOTE_TEXT, 'content of the queried document URL');
    expect((r2.headers.get('content-type') || '').startsWith('text/plain'), `content-type ${r2.headers.get('content-type')}`);
    const unsigned = url.split('?')[0];
    const r3 = await fetch(unsigned);
    expect(r3.status !== 200, `an unsigned URL without a session must not download (got ${r3.status})`);
    S.unsignedFileUrl = unsigned;
    return { status: r2.status };
  });

  // ---------------------------------------------------------------- update, destroy
  await step('update', async () => {
    S.shellfish.set('severity', 'severe');
    S.shellfish.set('notes', 'Worse since 2024');
    S.shellfish.set('isActive', false);
    await S.shellfish.save();
    const back = await new Parse.Query('Allergy').get(S.shellfish.id);
    expectEqual([back.get('severity'), back.get('notes'), back.get('isActive')], ['severe', 'Worse since 2024', false],
      'updated fields');
    expect(back.updatedAt > back.createdAt, 'updatedAt moved');
    S.doc.addUnique('tags', 'gp');
    S.doc.addUnique('tags', 'visit');
    await S.doc.save();
    const doc = await new Parse.Query('MedicalDocument').get(S.doc.id);
    expectEqual(doc.get('tags'), ['visit', 'gp'], 'addUnique tags');
    S.doc.unset('description');
    await S.doc.save();
    return { severity: back.get('severity') };
  });

  await step('destroy', async () => {
    const doomed = S.allergies[2]; // Penicillin
    await doomed.destroy();
    await expectParseError(new Parse.Query('Allergy').get(doomed.id), 101, 'get after destroy');
    const n = await new Parse.Query('Allergy').equalTo('profile', S.profile).count();
    expectEqual(n, 3, 'count after destroy');
    return { destroyed: doomed.id };
  });

  // ---------------------------------------------------------------- a second user sees nothing
  await step('second user signUp', async () => {
    const bob = new Parse.User();
    bob.set({ username: `bob_${RUN}`, password: 'bob-pw-1' });
    await bob.signUp();
    S.bobToken = bob.getSessionToken();
    // signUp made bob the current user; everything below passes its session token explicitly.
    return { id: bob.id };
  });

  await step('second user: find and count see nothing', async () => {
    const seen = {};
    for (const cls of ALL_CLASSES) {
      const found = await new Parse.Query(cls).find(as(S.bobToken));
      const n = await new Parse.Query(cls).count(as(S.bobToken));
      seen[cls] = [found.length, n];
    }
    const nonzero = Object.entries(seen).filter(([, [f, c]]) => f || c);
    expectEqual(nonzero, [], 'classes where the second user sees something');
    return seen;
  });

  await step('second user: get answers 101', async () => {
    const targets = [['Profile', S.profile.id], ['Allergy', S.peanut.id], ['MedicalDocument', S.doc.id],
      ...Object.entries(S.others).map(([cls, o]) => [cls, o.id])];
    for (const [cls, id] of targets) {
      await expectParseError(new Parse.Query(cls).get(id, as(S.bobToken)), 101, `get ${cls}`);
    }
    return { n: targets.length };
  });

  await step('second user: pointer, containedIn, greaterThan, matchesQuery, include see nothing', async () => {
    const q = () => new Parse.Query('Allergy');
    const counts = {
      equalToPointer: (await q().equalTo('profile', S.profile).find(as(S.bobToken))).length,
      containedInIds: (await q().containedIn('objectId', S.allergies.map((a) => a.id)).find(as(S.bobToken))).length,
      containedInProfiles: (await q().containedIn('profile', [S.profile, S.child]).count(as(S.bobToken))),
      greaterThan: (await q().greaterThan('recordedAt', day('1900-01-01')).find(as(S.bobToken))).length,
      matchesQuery: (await q().matchesQuery('profile', new Parse.Query('Profile')).find(as(S.bobToken))).length,
      matchesQueryByName: (await q().matchesQuery('profile',
        new Parse.Query('Profile').equalTo('fullName', `Alice ${RUN}`)).count(as(S.bobToken))),
      doesNotMatchQuery: (await q().doesNotMatchQuery('profile', new Parse.Query('Profile')).count(as(S.bobToken))),
      include: (await q().include('profile').find(as(S.bobToken))).length,
      profileByUser: (await new Parse.Query('Profile').equalTo('user', S.alice).count(as(S.bobToken))),
      documentByTitle: (await new Parse.Query('MedicalDocument').equalTo('title', 'GP visit').count(as(S.bobToken))),
      auditOfProfile: (await new Parse.Query('AuditLog').equalTo('profile', S.profile).count(as(S.bobToken))),
      auditOfFirstUser: (await new Parse.Query('AuditLog').equalTo('actor', S.alice).count(as(S.bobToken))),
    };
    const nonzero = Object.entries(counts).filter(([, n]) => n);
    expectEqual(nonzero, [], 'queries where the second user sees something');
    return counts;
  });

  await step('second user: cannot change, delete or add to the first user records', async () => {
    const stolen = Parse.Object.extend('Allergy').createWithoutData(S.peanut.id);
    stolen.set('severity', 'mild');
    await expectParseError(stolen.save(null, as(S.bobToken)), 101, 'update');
    await expectParseError(Parse.Object.extend('Allergy').createWithoutData(S.peanut.id).destroy(as(S.bobToken)), 101,
      'destroy');
    const planted = new Parse.Object('Allergy');
    planted.set({ profile: S.profile, substance: 'Planted', severity: 'mild', reaction: 'None' });
    const code = await expectParseError(planted.save(null, as(S.bobToken)), [101, 119], 'create on their profile');
    const r = await fetch(S.unsignedFileUrl, { headers: { 'X-Parse-Application-Id': Parse.applicationId,
      'X-Parse-Javascript-Key': Parse.javaScriptKey || '', 'X-Parse-Session-Token': S.bobToken } });
    expect(r.status !== 200, `second user downloads the first user's file (status ${r.status})`);
    const still = await new Parse.Query('Allergy').get(S.peanut.id, as(S.aliceToken));
    expectEqual(still.get('severity'), 'severe', 'peanut unchanged');
    return { createCode: code, fileStatus: r.status };
  });

  // ---------------------------------------------------------------- a provider with a read grant for allergies
  await step('share allergies with the provider (SharedAccess read)', async () => {
    const grant = new Parse.Object('SharedAccess');
    grant.set({
      profile: S.profile,
      grantee: Parse.User.createWithoutData(PROVIDER_USER_ID),
      provider: Parse.Object.extend('Provider').createWithoutData(PROVIDER_ID),
      accessLevel: 'read',
      scope: ['allergies'],
      expiresAt: new Date(Date.now() + 24 * 3600 * 1000),
    });
    await grant.save(null, as(S.aliceToken));
    const back = await new Parse.Query('SharedAccess').get(grant.id, as(S.aliceToken));
    expectEqual(back.get('createdBy') && back.get('createdBy').id, S.aliceId, 'createdBy');
    expectEqual(back.get('scope'), ['allergies'], 'scope');
    S.grant = back;
    return { id: grant.id };
  });

  await step('provider logIn', async () => {
    const doctor = await Parse.User.logIn(PROVIDER_USERNAME, PROVIDER_PASSWORD);
    expectEqual(doctor.id, PROVIDER_USER_ID, 'provider user id');
    expectEqual(doctor.get('role'), 'provider', 'role');
    S.drToken = doctor.getSessionToken();
    return { id: doctor.id };
  });

  const expectedActive = () => ['Latex', 'Peanut', 'Shellfish'];
  const providerView = async () => {
    const found = await new Parse.Query('Allergy').find(as(S.drToken));
    const other = {};
    for (const cls of ['Medication', 'LabResult', 'Vaccination', 'EmergencyContact', 'MedicalDocument']) {
      other[cls] = (await new Parse.Query(cls).find(as(S.drToken))).length + (await new Parse.Query(cls).count(as(S.drToken)));
    }
    return { allergies: names(found, 'substance').sort(), other };
  };

  await step('provider sees the shared allergies and nothing else', async () => {
    const view = await providerView();
    expectEqual(view.allergies, expectedActive(), 'allergies the provider sees');
    expectEqual(Object.entries(view.other).filter(([, n]) => n), [], 'other categories the provider sees');
    const n = await new Parse.Query('Allergy').equalTo('profile', S.profile).count(as(S.drToken));
    expectEqual(n, 3, 'count by profile pointer');
    const inc = await new Parse.Query('Allergy').equalTo('objectId', S.peanut.id).include('profile').first(as(S.drToken));
    expectEqual(inc && inc.get('profile').get('fullName'), `Alice ${RUN}`, 'the granted profile, included');
    const p = await new Parse.Query('Profile').get(S.profile.id, as(S.drToken));
    expectEqual(p.get('fullName'), `Alice ${RUN}`, 'the granted profile');
    await expectParseError(new Parse.Query('Profile').get(S.child.id, as(S.drToken)), 101, 'the other profile');
    const kid = await new Parse.Query('Allergy').equalTo('profile', S.child).count(as(S.drToken));
    expectEqual(kid, 0, 'allergies of the other profile');
    for (const [cls, o] of Object.entries(S.others)) {
      await expectParseError(new Parse.Query(cls).get(o.id, as(S.drToken)), 101, `get ${cls}`);
    }
    await expectParseError(new Parse.Query('MedicalDocument').get(S.doc.id, as(S.drToken)), 101, 'get MedicalDocument');
    const file = await fetch(S.unsignedFileUrl, { headers: { 'X-Parse-Session-Token': S.drToken } });
    expect(file.status !== 200, `the provider downloads a document file without a documents grant (${file.status})`);
    const matched = await new Parse.Query('Medication').matchesQuery('profile', new Parse.Query('Profile'))
      .count(as(S.drToken));
    expectEqual(matched, 0, 'medications via matchesQuery');
    return view;
  });

  await step('provider cannot change allergies with a read grant', async () => {
    const a = Parse.Object.extend('Allergy').createWithoutData(S.peanut.id);
    a.set('severity', 'mild');
    const updateCode = await expectParseError(a.save(null, as(S.drToken)), 101, 'provider update');
    await expectParseError(Parse.Object.extend('Allergy').createWithoutData(S.peanut.id).destroy(as(S.drToken)), 101,
      'provider destroy');
    const created = new Parse.Object('Allergy');
    created.set({ profile: S.profile, substance: 'Added by doctor', severity: 'mild', reaction: 'None' });
    const createCode = await expectParseError(created.save(null, as(S.drToken)), [101, 119], 'provider create');
    const g = Parse.Object.extend('SharedAccess').createWithoutData(S.grant.id);
    g.set('scope', ['allergies', 'medications', 'labs']);
    await expectParseError(g.save(null, as(S.drToken)), 101, 'provider widens its own grant');
    const still = await new Parse.Query('Allergy').get(S.peanut.id, as(S.aliceToken));
    expectEqual(still.get('severity'), 'severe', 'peanut unchanged');
    return { updateCode, createCode };
  });

  await step('grant expired: provider loses the allergies', async () => {
    S.grant.set('expiresAt', new Date(Date.now() - 60 * 1000));
    await S.grant.save(null, as(S.aliceToken));
    const view = await providerView();
    expectEqual(view.allergies, [], 'allergies after expiry');
    await expectParseError(new Parse.Query('Allergy').get(S.peanut.id, as(S.drToken)), 101, 'get after expiry');
    await expectParseError(new Parse.Query('Profile').get(S.profile.id, as(S.drToken)), 101, 'profile after expiry');
    const r = await fetch(S.unsignedFileUrl, { headers: { 'X-Parse-Session-Token': S.drToken } });
    expect(r.status !== 200, 'file after expiry');
    return view;
  });

  await step('grant renewed: provider sees the allergies again', async () => {
    S.grant.set('expiresAt', new Date(Date.now() + 3600 * 1000));
    await S.grant.save(null, as(S.aliceToken));
    const view = await providerView();
    expectEqual(view.allergies, expectedActive(), 'allergies after renewal');
    return view;
  });

  await step('grant revoked: provider loses the allergies', async () => {
    S.grant.set('revokedAt', new Date());
    await S.grant.save(null, as(S.aliceToken));
    const view = await providerView();
    expectEqual(view.allergies, [], 'allergies after revocation');
    expectEqual(Object.entries(view.other).filter(([, n]) => n), [], 'other categories after revocation');
    await expectParseError(new Parse.Query('Allergy').get(S.peanut.id, as(S.drToken)), 101, 'get after revocation');
    const n = await new Parse.Query('Allergy').count(as(S.drToken));
    expectEqual(n, 0, 'count after revocation');
    return view;
  });

  // ---------------------------------------------------------------- logOut
  await step('logOut', async () => {
    const user = await Parse.User.logIn(`alice_${RUN}`, 'alice-pw-1');
    const token = user.getSessionToken();
    await Parse.User.logOut();
    expectEqual(Parse.User.current(), null, 'no current user after logOut');
    await expectParseError(new Parse.Query('Allergy').find(as(token)), 209, 'the logged-out token');
    // logOut ends that session only: the first login still works.
    const n = await new Parse.Query('Allergy').equalTo('profile', S.profile).count(as(S.aliceToken));
    expectEqual(n, 3, 'the other session still works');
    return { ok: true };
  });
}

finish(main);
