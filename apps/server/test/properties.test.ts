/**
 * Property-based tests (fast-check) over every procedure's input, through real HTTP against a
 * real server on port 0: any Unicode, huge and deeply nested values, wrong types, odd keys
 * (`__proto__`, `toString`...), oversized batches. Whatever comes in:
 *
 * - never a 500 (every answer is a tRPC error with a client-side code, or a result);
 * - never an invalid value stored (every stored profile passes the schema again, unchanged);
 * - never a change without its event (a profile that changed has a new log event carrying it).
 *
 * Runs in memory mode, and with fewer runs against real Redis (the suite's own redis-server).
 * Run counts are sized so the file takes seconds on 2 cores; set NAMECARD_PROPERTY_RUNS to
 * multiply them for a longer hunt, and fast-check prints the seed of any failure to replay it.
 */
import {
  getProfile,
  lastEventId,
  profileFields,
  readLogSince,
  type Profile,
  type ProfileChangeEvent,
} from '@namecard/db';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeRealRedis, realRedisUrl, useTestServer, type TestServer } from './helpers';

const redis = await realRedisUrl();
const factor = Number(process.env.NAMECARD_PROPERTY_RUNS ?? 1) || 1;

/** Generous rate limits: the properties are about inputs, not about being throttled. */
const settings = {
  rateRules: {
    signIn: { points: 100_000, seconds: 60 },
    authFailures: { points: 100_000, seconds: 60 },
    friendAdd: { points: 100_000, seconds: 60 },
  },
};

type Kind = 'query' | 'mutation' | 'subscription';
interface Procedure {
  path: string;
  kind: Kind;
  auth: 'user' | 'admin' | 'none';
  /** Inputs that are close to valid (known keys, plausible values), besides arbitrary ones. */
  nearValid: fc.Arbitrary<unknown>;
}

// ---------------------------------------------------------------------------------------------
// Inputs

const ODD_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', ''];

/** Any string: full Unicode, lone surrogates, controls, bidi and zero-width characters. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({
    unit: fc.constantFrom(
      'a',
      ' ',
      '\n',
      '\r',
      '\t',
      '\u0000',
      '\u0085',
      '\u200b',
      '\u200d',
      '\u202e',
      '\ufeff',
      '\ud800',
      '"',
      "'",
      '\\',
      '<',
      '😀',
      '王',
      '@',
      '.',
      'http://',
    ),
    maxLength: 40,
  }),
);

const accountLike = fc.oneof(
  fc.constantFrom('alice', 'bob', 'carol', 'nobody', '', 'a'.repeat(33), 'x y', 'ALICE'),
  fc.stringMatching(/^[A-Za-z0-9_.@-]{1,32}$/),
  anyString,
);

/** Prebuilt large values (built once: generating them per run would dominate the time). */
const HUGE = {
  string: 'x'.repeat(200_000),
  unicode: '😀\u200d'.repeat(30_000),
  array: Array.from({ length: 20_000 }, (_, i) => `a${i}`),
  keys: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])),
  nested: JSON.parse('['.repeat(3000) + ']'.repeat(3000)) as unknown,
  nestedObject: JSON.parse('{"a":'.repeat(2000) + '1' + '}'.repeat(2000)) as unknown,
};
// fast-check prints a failing input; a 3,000-deep array would overflow its printer.
for (const [name, value] of Object.entries(HUGE)) {
  if (typeof value === 'object' && value !== null) {
    Object.defineProperty(value, fc.toStringMethod, { value: () => `<HUGE.${name}>` });
  }
}
const huge = fc.constantFrom(...Object.values(HUGE));

const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: anyString },
  { weight: 1, arbitrary: huge },
  {
    weight: 1,
    arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...ODD_KEYS), anyString), fc.jsonValue(), {
      maxKeys: 5,
    }),
  },
);

/** A value for one field: right type or wrong, valid-looking or not. */
const fieldValue = fc.oneof(
  { weight: 5, arbitrary: anyString },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      'https://img.example.com/a.png',
      '  https://IMG.example.com/a b.png ',
      'http://a.example/" onerror="x',
      'javascript:alert(1)',
      'a@b.co',
      '1990-02-29',
      '2000-02-29',
      '+1 (555) 0100',
      '{"k":[1,2]}',
      'male',
      'female',
      'unknown',
      'line\r\nline',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string())),
  },
  { weight: 1, arbitrary: huge },
);

const FIELDS = ['nick', 'avatar', 'sign', 'gender', 'email', 'birth', 'tel', 'custom'];
const patchLike = fc.dictionary(
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...FIELDS) },
    fc.constantFrom(...ODD_KEYS),
    anyString,
  ),
  fieldValue,
  { maxKeys: 6 },
);

const withOptional = <T>(arb: fc.Arbitrary<T>) => fc.oneof(arb, fc.constant(undefined));

const accepted = (field: keyof typeof profileFields) => (value: unknown) =>
  profileFields[field].safeParse(value).success;

/** Patches the schema accepts (so writes happen, and the stored-value checks have work). */
const validPatch = fc.record(
  {
    nick: fc.string({ unit: 'grapheme', maxLength: 20 }).filter(accepted('nick')),
    sign: fc.string({ unit: 'grapheme', maxLength: 60 }).filter(accepted('sign')),
    avatar: fc.webUrl({ withQueryParameters: true }).filter(accepted('avatar')),
    gender: fc.constantFrom('', 'male', 'female', 'unknown'),
    email: fc.emailAddress().filter(accepted('email')),
    birth: fc
      .date({ min: new Date('1900-01-01'), max: new Date('2099-12-31'), noInvalidDate: true })
      .map((d) => d.toISOString().slice(0, 10)),
    tel: fc.stringMatching(/^[-+()0-9]{1,20}$/),
    custom: fc.json({ maxDepth: 2 }).filter(accepted('custom')),
  },
  { requiredKeys: [] },
);

const PROCEDURES: Procedure[] = [
  { path: 'user.getMyInfo', kind: 'query', auth: 'user', nearValid: fc.constant(undefined) },
  {
    path: 'user.updateMyInfo',
    kind: 'mutation',
    auth: 'user',
    nearValid: fc.oneof(validPatch, patchLike),
  },
  {
    path: 'user.getUser',
    kind: 'query',
    auth: 'user',
    nearValid: fc.record({ account: accountLike }),
  },
  {
    path: 'user.getUsers',
    kind: 'query',
    auth: 'user',
    nearValid: fc.record({ accounts: fc.array(accountLike, { maxLength: 160 }) }),
  },
  {
    path: 'user.search',
    kind: 'query',
    auth: 'user',
    nearValid: fc.record(
      {
        query: anyString,
        cursor: withOptional(fc.oneof(anyString, fc.constant(null))),
        limit: withOptional(fc.oneof(fc.integer({ min: -5, max: 120 }), fc.double())),
      },
      { requiredKeys: ['query'] },
    ),
  },
  {
    path: 'user.sync',
    kind: 'query',
    auth: 'user',
    nearValid: withOptional(
      fc.record({ since: fc.oneof(fc.stringMatching(/^\d{1,22}$/), anyString, fc.constant(null)) }),
    ),
  },
  {
    path: 'user.onChange',
    kind: 'subscription',
    auth: 'user',
    nearValid: withOptional(
      fc.record(
        {
          accounts: withOptional(fc.array(accountLike, { maxLength: 8 })),
          lastEventId: withOptional(fc.oneof(fc.stringMatching(/^\d{1,22}$/), anyString)),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  {
    path: 'friend.add',
    kind: 'mutation',
    auth: 'user',
    nearValid: fc.record({ account: accountLike }),
  },
  {
    path: 'friend.remove',
    kind: 'mutation',
    auth: 'user',
    nearValid: fc.record({ account: accountLike }),
  },
  { path: 'friend.list', kind: 'query', auth: 'user', nearValid: fc.constant(undefined) },
  {
    path: 'auth.signIn',
    kind: 'mutation',
    auth: 'none',
    nearValid: fc.record({ account: accountLike, token: anyString }),
  },
  { path: 'auth.signOut', kind: 'mutation', auth: 'none', nearValid: fc.constant(undefined) },
  {
    path: 'admin.createAccount',
    kind: 'mutation',
    auth: 'admin',
    nearValid: fc.record(
      {
        account: fc.oneof(fc.stringMatching(/^[a-z0-9]{1,12}$/), accountLike),
        token: withOptional(fc.oneof(fc.stringMatching(/^[!-~]{16,40}$/), anyString)),
        profile: withOptional(patchLike),
      },
      { requiredKeys: ['account'] },
    ),
  },
  {
    path: 'admin.updateUser',
    kind: 'mutation',
    auth: 'admin',
    nearValid: fc.record({
      account: fc.oneof(fc.constantFrom('bob', 'carol'), accountLike),
      patch: fc.oneof(validPatch, patchLike),
    }),
  },
  {
    path: 'admin.getUsers',
    kind: 'query',
    auth: 'admin',
    nearValid: fc.record({ accounts: fc.array(accountLike, { maxLength: 210 }) }),
  },
  {
    path: 'admin.revokeSessions',
    kind: 'mutation',
    auth: 'admin',
    nearValid: fc.record({ account: accountLike }),
  },
  {
    path: 'admin.rotateToken',
    kind: 'mutation',
    auth: 'admin',
    nearValid: fc.record(
      { account: fc.constantFrom('nobody', 'x y', ''), token: withOptional(anyString) },
      { requiredKeys: ['account'] },
    ),
  },
];

for (const procedure of PROCEDURES) {
  Object.defineProperty(procedure, fc.toStringMethod, { value: () => procedure.path });
}

/** A procedure with an input: near-valid most of the time, anything else otherwise. */
const WRITES = PROCEDURES.filter((p) => ['user.updateMyInfo', 'admin.updateUser'].includes(p.path));
const call = fc.constantFrom(...PROCEDURES, ...WRITES, ...WRITES).chain((procedure) =>
  fc.record({
    procedure: fc.constant(procedure),
    input: fc.oneof(
      { weight: 3, arbitrary: procedure.nearValid },
      { weight: 2, arbitrary: anyJson },
    ),
    wrongMethod: fc.boolean().map((b) => b && Math.random() < 0.1),
  }),
);

// ---------------------------------------------------------------------------------------------
// Calling

interface Answer {
  status: number;
  /** The tRPC error code of every error in the answer (one per call of a batch). */
  codes: string[];
  text: string;
}

/** Statuses a client may get; 500 and 502-504 are not among them (503 only when Redis is away). */
const CLIENT_STATUSES = new Set([200, 207, 400, 401, 403, 404, 405, 409, 413, 414, 415, 429, 431]);

function headersFor(server: TestServer, auth: Procedure['auth']): Record<string, string> {
  if (auth === 'user') return { authorization: `Bearer ${server.tokens.alice}` };
  if (auth === 'admin') return { 'x-namecard-admin': server.adminSecret };
  return {};
}

function errorCodes(text: string): string[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return ['(not JSON)'];
  }
  const items = Array.isArray(body) ? body : [body];
  return items.flatMap((item: { error?: { data?: { code?: string } } }) =>
    item && typeof item === 'object' && 'error' in item
      ? [item.error?.data?.code ?? '(no code)']
      : [],
  );
}

async function send(
  server: TestServer,
  procedure: Procedure,
  input: unknown,
  wrongMethod: boolean,
): Promise<Answer> {
  const headers = headersFor(server, procedure.auth);
  const asPost = procedure.kind === 'mutation' ? !wrongMethod : wrongMethod;
  const url = new URL(`${server.url}/trpc/${procedure.path}`);
  const controller = new AbortController();
  let res: Response;
  if (asPost) {
    res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: input === undefined ? undefined : JSON.stringify(input),
      signal: controller.signal,
    });
  } else {
    if (input !== undefined) url.searchParams.set('input', JSON.stringify(input));
    res = await fetch(url, { headers, signal: controller.signal });
  }
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    // A subscription that started: its first bytes are enough; then hang up.
    controller.abort();
    return { status: res.status, codes: [], text: '' };
  }
  const text = await res.text();
  return { status: res.status, codes: errorCodes(text), text };
}

// ---------------------------------------------------------------------------------------------
// Invariants

/** Every stored profile field passes its schema again, unchanged (canonical values only). */
function expectValidStored(profile: Profile) {
  for (const [field, schema] of Object.entries(profileFields)) {
    const value = (profile as Record<string, unknown>)[field];
    const parsed = schema.safeParse(value);
    expect(
      parsed.success,
      `${profile.account}.${field} = ${JSON.stringify(value)?.slice(0, 200)}`,
    ).toBe(true);
    if (parsed.success && field !== 'gender')
      expect(parsed.data, `${profile.account}.${field}`).toBe(value);
  }
}

async function snapshot(server: TestServer, accounts: Iterable<string>) {
  const out = new Map<string, Profile | null>();
  for (const account of accounts) out.set(account, await getProfile(server.db, account));
  return out;
}

async function eventsSince(server: TestServer, after: string): Promise<ProfileChangeEvent[]> {
  const events: ProfileChangeEvent[] = [];
  for (;;) {
    const page = await readLogSince(server.db, after, 1000);
    if (page.events.length === 0) return events;
    events.push(...page.events);
    after = page.cursor;
  }
}

function expectAnswerForAClient(answer: Answer, what: string) {
  expect(
    CLIENT_STATUSES.has(answer.status),
    `${what}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`,
  ).toBe(true);
  expect(answer.codes, `${what}: ${answer.text.slice(0, 300)}`).not.toContain(
    'INTERNAL_SERVER_ERROR',
  );
  expect(answer.text.length, `${what}: answer size`).toBeLessThan(64 * 1024);
}

function properties(S: { readonly current: TestServer }, runs: number) {
  it(
    `any input to any procedure: never a 500, never an invalid value stored, never a change without its event (${runs} runs)`,
    async () => {
      const server = S.current;
      const accounts = new Set(['alice', 'bob', 'carol']);
      let changes = 0;
      await fc.assert(
        fc.asyncProperty(call, async ({ procedure, input, wrongMethod }) => {
          const what = `${procedure.path} ${JSON.stringify(input)?.slice(0, 200)}`;
          const before = await snapshot(server, accounts);
          const lastId = await lastEventId(server.db);
          const answer = await send(server, procedure, input, wrongMethod);
          expectAnswerForAClient(answer, what);

          if (procedure.path === 'admin.createAccount' && answer.status === 200) {
            accounts.add(
              (JSON.parse(answer.text) as { result: { data: { account: string } } }).result.data
                .account,
            );
          }
          const after = await snapshot(server, accounts);
          const events = await eventsSince(server, lastId);
          for (const [account, profile] of after) {
            if (!profile) continue;
            expectValidStored(profile);
            const previous = before.get(account);
            if (JSON.stringify(previous) !== JSON.stringify(profile)) {
              changes++;
              const own = events.filter((e) => e.account === account);
              expect(own.at(-1)?.profile, `${what}: ${account} changed without its event`).toEqual(
                profile,
              );
            }
          }
          if (answer.status !== 200 && procedure.kind === 'mutation') {
            // A refused mutation changes nothing.
            expect(events, `${what}: refused but logged`).toEqual([]);
          }
        }),
        { numRuns: runs, endOnFailure: true },
      );
      // The runs did change profiles (so the event and validity checks had something to check).
      expect(changes).toBeGreaterThan(0);
      console.info(`[properties] ${runs} runs changed a profile ${changes} times`);
    },
    30_000 * factor,
  );

  it(
    `batches of any size and mix: past the limit BAD_REQUEST, never a 500 (${Math.ceil(runs / 10)} runs)`,
    async () => {
      const server = S.current;
      const queries = PROCEDURES.filter((p) => p.kind === 'query' && p.auth === 'user');
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.constantFrom(...queries), { minLength: 1, maxLength: 70 }),
          fc.array(anyJson, { maxLength: 4 }),
          async (calls, inputs) => {
            const url = new URL(`${server.url}/trpc/${calls.map((c) => c.path).join(',')}`);
            url.searchParams.set('batch', '1');
            const batchInput = Object.fromEntries(inputs.map((input, i) => [String(i), input]));
            url.searchParams.set('input', JSON.stringify(batchInput));
            const res = await fetch(url, { headers: headersFor(server, 'user') });
            const text = await res.text();
            const answer = { status: res.status, codes: errorCodes(text), text };
            expectAnswerForAClient(answer, `batch of ${calls.length}`);
            if (calls.length > 50 && res.status !== 431)
              expect(answer.codes).toEqual(['BAD_REQUEST']);
          },
        ),
        { numRuns: Math.ceil(runs / 10), endOnFailure: true },
      );
    },
    30_000 * factor,
  );
}

describe('properties [memory mode]', () => {
  const S = useTestServer({ settings });
  properties(S, Math.round(400 * factor));
});

describeRealRedis('properties', redis, (url) => {
  const S = useTestServer({ redisUrl: url, settings });
  properties(S, Math.round(150 * factor));
});
