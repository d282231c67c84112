/** The profile schema is pure code: these tests need no Redis and run once. */
import { describe, expect, it } from 'vitest';
import {
  LIMITS,
  accountSchema,
  charCount,
  eventIdSchema,
  profilePatchSchema,
  searchInputSchema,
  type ProfilePatch,
} from '../src';

const ok = (patch: Record<string, unknown>) => profilePatchSchema.safeParse(patch).success;

/** The fields whose issues a patch has. */
function badFields(patch: Record<string, unknown>): string[] {
  const result = profilePatchSchema.safeParse(patch);
  return result.success ? [] : result.error.issues.map((i) => i.path.join('.') || `(${i.code})`);
}

const emoji = '😀';
const emailOf = (length: number) => `${'a'.repeat(length - '@example.com'.length)}@example.com`;

describe('profilePatchSchema', () => {
  it('counts characters by code point', () => {
    expect(charCount('😀😀')).toBe(2);
    expect('😀😀'.length).toBe(4);
    expect(charCount('王小明')).toBe(3);
    expect(charCount('')).toBe(0);
  });

  it.each([
    ['nick', LIMITS.nick],
    ['sign', LIMITS.sign],
  ] as const)('%s: %i characters ok, one more rejected (ASCII, emoji and CJK)', (field, max) => {
    for (const ch of ['a', emoji, '王', 'さ']) {
      expect(ok({ [field]: ch.repeat(max) }), `${field} ${max}×${ch}`).toBe(true);
      expect(badFields({ [field]: ch.repeat(max + 1) }), `${field} ${max + 1}×${ch}`).toEqual([
        field,
      ]);
    }
  });

  it('nick: 64 emoji is fine, 65 is not', () => {
    expect(ok({ nick: emoji.repeat(64) })).toBe(true);
    expect(ok({ nick: emoji.repeat(65) })).toBe(false);
  });

  it('nick is one line; sign may have newlines and tabs but no other controls', () => {
    expect(ok({ nick: 'a\nb' })).toBe(false);
    expect(ok({ nick: 'a\tb' })).toBe(false);
    expect(ok({ nick: 'a\u007fb' })).toBe(false);
    expect(ok({ sign: 'a\nb\tc' })).toBe(true);
    expect(ok({ sign: 'a\u0000b' })).toBe(false);
    expect(ok({ sign: 'a\u001bb' })).toBe(false);
    expect(ok({ nick: 'x\ud800' })).toBe(false); // lone surrogate
    expect(ok({ sign: '\udc00' })).toBe(false);
  });

  it('avatar: http/https URLs up to 1024 characters; no javascript:, data: or other schemes', () => {
    const url = (length: number) => {
      const base = 'https://example.com/';
      return base + 'a'.repeat(length - base.length);
    };
    expect(ok({ avatar: 'https://img.example.com/a.png' })).toBe(true);
    expect(ok({ avatar: 'http://img.example.com/a.png?size=64' })).toBe(true);
    expect(ok({ avatar: url(LIMITS.avatar) })).toBe(true);
    expect(badFields({ avatar: url(LIMITS.avatar + 1) })).toEqual(['avatar']);
    for (const bad of [
      'javascript:alert(1)',
      'JavaScript:alert(1)',
      ' javascript:alert(1)',
      'data:image/png;base64,AAAA',
      'data:text/html,<script>alert(1)</script>',
      'ftp://example.com/a.png',
      'file:///etc/passwd',
      'vbscript:msgbox(1)',
      '//example.com/a.png',
      '/relative/a.png',
      'not a url',
      'https://',
    ]) {
      expect(ok({ avatar: bad }), bad).toBe(false);
    }
  });

  it('email: local@domain, at most 64 characters', () => {
    expect(ok({ email: 'a@example.com' })).toBe(true);
    expect(ok({ email: 'first.last+tag@mail.example.org' })).toBe(true);
    expect(emailOf(64)).toHaveLength(64);
    expect(ok({ email: emailOf(64) })).toBe(true);
    expect(badFields({ email: emailOf(65) })).toEqual(['email']);
    for (const bad of [
      'plainaddress',
      '@example.com',
      'a@',
      'a@b',
      'a b@example.com',
      'a@@example.com',
      'a@exa mple.com',
    ]) {
      expect(ok({ email: bad }), bad).toBe(false);
    }
  });

  it('birth: a real yyyy-MM-dd date', () => {
    expect(ok({ birth: '2024-02-29' })).toBe(true);
    expect(ok({ birth: '2000-02-29' })).toBe(true);
    expect(ok({ birth: '1990-12-31' })).toBe(true);
    for (const bad of [
      '2023-02-29',
      '1900-02-29',
      '2024-13-01',
      '2024-00-10',
      '2024-04-31',
      '2024-01-00',
      '2024-1-01',
      '24-01-01',
      '2024/01/01',
      '2024-01-01T00:00:00Z',
      '01-01-2024',
    ]) {
      expect(ok({ birth: bad }), bad).toBe(false);
    }
  });

  it('tel: digits and + - ( ), at most 32 characters', () => {
    expect(ok({ tel: '+1 (555) 0100'.replace(/ /g, '') })).toBe(true);
    expect(ok({ tel: '+86-10-5550-0202' })).toBe(true);
    expect(ok({ tel: '1'.repeat(LIMITS.tel) })).toBe(true);
    expect(badFields({ tel: '1'.repeat(LIMITS.tel + 1) })).toEqual(['tel']);
    for (const bad of ['555 0100', '555.0100', 'call me', '+1-555-01a0', '１２３']) {
      expect(ok({ tel: bad }), bad).toBe(false);
    }
  });

  it('custom: valid JSON of at most 1024 characters', () => {
    expect(ok({ custom: '{"theme":"dark"}' })).toBe(true);
    expect(ok({ custom: '[1,2,3]' })).toBe(true);
    expect(ok({ custom: '42' })).toBe(true);
    expect(ok({ custom: '"text"' })).toBe(true);
    const json = (length: number) => JSON.stringify('x'.repeat(length - 2));
    expect(json(LIMITS.custom)).toHaveLength(LIMITS.custom);
    expect(ok({ custom: json(LIMITS.custom) })).toBe(true);
    expect(badFields({ custom: json(LIMITS.custom + 1) })).toEqual(['custom']);
    // Counted by code point too.
    const emojiJson = `"${emoji.repeat(LIMITS.custom - 2)}"`;
    expect(ok({ custom: emojiJson })).toBe(true);
    expect(ok({ custom: `"${emoji.repeat(LIMITS.custom - 1)}"` })).toBe(false);
    for (const bad of ['{', "{'a':1}", '{"a":1,}', 'undefined', 'NaN', '{"a":1}}', 'not json']) {
      expect(ok({ custom: bad }), bad).toBe(false);
    }
  });

  it('gender: unknown, male, female (or empty)', () => {
    for (const g of ['unknown', 'male', 'female', '']) expect(ok({ gender: g }), g).toBe(true);
    for (const g of ['Male', 'other', 'm', 1, null])
      expect(ok({ gender: g }), String(g)).toBe(false);
  });

  it("accepts '' for every field, and the empty patch", () => {
    const cleared: Required<ProfilePatch> = {
      nick: '',
      avatar: '',
      sign: '',
      gender: '',
      email: '',
      birth: '',
      tel: '',
      custom: '',
    };
    expect(profilePatchSchema.parse(cleared)).toEqual(cleared);
    for (const field of Object.keys(cleared)) expect(ok({ [field]: '' }), field).toBe(true);
    expect(profilePatchSchema.parse({})).toEqual({});
  });

  it('rejects unknown keys (no mass assignment) and non-string values', () => {
    expect(ok({ account: 'mallory' })).toBe(false);
    expect(ok({ nick: 'ok', updateTime: 1 })).toBe(false);
    expect(ok({ nick: 'ok', createTime: 1 })).toBe(false);
    expect(ok({ _seq: '1' })).toBe(false);
    expect(ok({ __proto__: { nick: 'x' }, nick: 'y' })).toBe(true); // a literal __proto__ sets the prototype, not a key
    expect(ok(JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>)).toBe(false);
    expect(ok({ nick: 5 })).toBe(false);
    expect(ok({ sign: null })).toBe(false);
  });

  it('reports every bad field at once', () => {
    expect(
      badFields({ nick: 'x'.repeat(65), email: 'nope', birth: '2023-02-29', tel: 'abc' }).sort(),
    ).toEqual(['birth', 'email', 'nick', 'tel']);
  });
});

describe('other schemas', () => {
  it('accountSchema: 1..32 of A-Z a-z 0-9 _ . @ -', () => {
    for (const a of ['a', 'alice', 'A.b_c-d@e', 'x'.repeat(32), '0'])
      expect(accountSchema.safeParse(a).success, a).toBe(true);
    for (const a of ['', 'x'.repeat(33), 'a b', 'a{b}', 'a:b', 'josé', 'a/b', 'a*']) {
      expect(accountSchema.safeParse(a).success, a).toBe(false);
    }
  });

  it('searchInputSchema: non-empty trimmed query of at most 64 characters, limit 1..100', () => {
    expect(searchInputSchema.parse({ query: ' jo ' })).toEqual({ query: 'jo', limit: 20 });
    expect(searchInputSchema.safeParse({ query: '   ' }).success).toBe(false);
    expect(searchInputSchema.safeParse({ query: emoji.repeat(64) }).success).toBe(true);
    expect(searchInputSchema.safeParse({ query: emoji.repeat(65) }).success).toBe(false);
    expect(searchInputSchema.safeParse({ query: 'a', limit: 100 }).success).toBe(true);
    expect(searchInputSchema.safeParse({ query: 'a', limit: 101 }).success).toBe(false);
    expect(searchInputSchema.safeParse({ query: 'a', limit: 0 }).success).toBe(false);
  });

  it('eventIdSchema: decimal ids only', () => {
    expect(eventIdSchema.safeParse('0').success).toBe(true);
    expect(eventIdSchema.safeParse('12345678901234567890').success).toBe(true);
    for (const bad of ['', '-1', '1.5', '1e3', 'abc', '123456789012345678901']) {
      expect(eventIdSchema.safeParse(bad).success, bad).toBe(false);
    }
  });
});

describe('text that imitates or hides (issue 8)', () => {
  it('nick and email refuse bidi overrides, zero-width characters and C1 controls', () => {
    for (const bad of [
      'alice\u202eecila', // right-to-left override
      'ali\u200bce', // zero-width space
      'ali\u200dce', // zero-width joiner between letters
      'ali\u200cce', // zero-width non-joiner between Latin letters
      '\ufeffalice', // BOM
      'ali\u00adce', // soft hyphen
      'alice\u2066', // isolate
      'ali\u0085ce', // C1 NEL
      'ali\u009bce', // C1 CSI
      'a\u2028b', // line separator
    ]) {
      expect(badFields({ nick: bad }), JSON.stringify(bad)).toEqual(['nick']);
      expect([...new Set(badFields({ email: `${bad}@example.com` }))], JSON.stringify(bad)).toEqual(
        ['email'],
      );
    }
  });

  it('nick keeps what real text needs: emoji sequences, flags, Persian ZWNJ', () => {
    for (const good of [
      '👨\u200d👩\u200d👧', // family (ZWJ after emoji)
      '🧑🏽\u200d💻', // technologist, skin tone
      '🏳️\u200d🌈', // rainbow flag (ZWJ after VS16)
      '🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}', // Scotland
      'می\u200cخواهم', // Persian with ZWNJ
      'José Ñandú',
      '王小明',
    ]) {
      expect(ok({ nick: good }), JSON.stringify(good)).toBe(true);
    }
  });

  it('sign accepts CRLF and LF, refuses C1 controls and bidi overrides', () => {
    expect(ok({ sign: 'line one\r\nline two' })).toBe(true);
    expect(ok({ sign: 'a\rb' })).toBe(true);
    expect(ok({ sign: 'a\u0085b' })).toBe(false);
    expect(ok({ sign: 'a\u202eb' })).toBe(false);
  });

  it('avatar is stored trimmed and canonical; quotes, spaces, NUL, newlines inside are refused', () => {
    const parse = (avatar: string) => profilePatchSchema.parse({ avatar }).avatar;
    expect(parse('  https://IMG.Example.com/a.png  ')).toBe('https://img.example.com/a.png');
    expect(parse('https://example.com')).toBe('https://example.com/');
    expect(parse('https://bücher.example/a.png')).toBe('https://xn--bcher-kva.example/a.png');
    expect(parse('')).toBe('');
    for (const bad of [
      'http://a.example/" onerror="alert(1)',
      "http://a.example/'x",
      'http://a.example/a b.png',
      'http://a.example/a\u0000.png',
      'http://a.example/a\n.png',
      'http://a.example/\u200b.png',
      'http://a.example/<script>',
      'http://a.example\\@evil.example/',
    ]) {
      expect(badFields({ avatar: bad }), JSON.stringify(bad)).toEqual(['avatar']);
    }
    // Each refusal says why (not zod's bare "Invalid input" for a failed union).
    const message = (avatar: string) =>
      profilePatchSchema.safeParse({ avatar }).error?.issues.map((i) => i.message);
    expect(message('javascript:alert(1)')).toEqual(['must be an http: or https: URL']);
    expect(message('   ')).toEqual(['must be an http: or https: URL']);
    expect(message('http://a.example/" x')).toEqual([
      'must not contain spaces, quotes, < > \\ or control characters',
    ]);
    // The stored value passes the schema again unchanged.
    const stored = parse(' https://Example.com/%7Efoo/ä.png ');
    expect(parse(stored!)).toBe(stored);
  });

  it('a huge string is refused by its length before anything slower looks at it', () => {
    expect(badFields({ nick: '😀\u200d'.repeat(200_000) })).toEqual(['nick']);
  });
});
