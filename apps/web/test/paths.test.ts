/** Sign-in's `next` only ever leads to a local path of this site (no open redirect). */
import { describe, expect, it } from 'vitest';
import { isPrivatePath, safeNext, signInHref } from '../lib/paths';
import { initials, webUrl } from '../lib/profile';

describe('safeNext', () => {
  it('keeps local paths with their query and hash', () => {
    expect(safeNext('/users?q=%E7%8E%8B#top')).toBe('/users?q=%E7%8E%8B#top');
    expect(safeNext('/users/alice')).toBe('/users/alice');
  });

  it.each([
    'https://evil.example/',
    '//evil.example/x',
    '/\\evil.example',
    '\\\\evil.example',
    'javascript:alert(1)',
    'users',
    '',
    '/signin?next=/me',
  ])('sends %j to /me instead', (next) => {
    expect(safeNext(next)).toBe('/me');
  });

  it('builds the sign-in link of a private page', () => {
    expect(signInHref('/users?q=jo')).toBe('/signin?next=%2Fusers%3Fq%3Djo');
    expect(signInHref('//evil.example')).toBe('/signin');
    expect([isPrivatePath('/users/x'), isPrivatePath('/signin'), isPrivatePath('/mex')]).toEqual([
      true,
      false,
      false,
    ]);
  });
});

describe('profile display', () => {
  it('uses only http(s) URLs as image sources', () => {
    expect(webUrl('https://a.example/p.png')).toBe('https://a.example/p.png');
    for (const bad of ['javascript:alert(1)', 'data:image/png;base64,AAAA', '/local.png', '']) {
      expect(webUrl(bad)).toBeNull();
    }
  });

  it('makes initials from the nick, counting code points', () => {
    expect(initials('Alice Liddell', 'alice')).toBe('AL');
    expect(initials('王小明', 'wang')).toBe('王');
    expect(initials('', 'zoe')).toBe('Z');
    expect(initials('😀 smile', 'x')).toBe('😀');
  });
});
