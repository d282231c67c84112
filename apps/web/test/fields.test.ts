/** The profile form's messages: the server's schema, with the reason a union hides brought out. */
import { describe, expect, it } from 'vitest';
import { fieldError } from '../components/profile-form';

describe('fieldError', () => {
  it('gives the reason, not "Invalid input"', () => {
    expect(fieldError('avatar', 'javascript:alert(1)')).toBe('must be an http: or https: URL');
    expect(fieldError('avatar', 'https://a b')).toMatch(/must not contain spaces/);
    expect(fieldError('nick', 'n'.repeat(65))).toBe('must be at most 64 characters');
    expect(fieldError('custom', '{x')).toMatch(/^must be valid JSON \(.+\)$/);
    expect(fieldError('tel', 'call me')).toBe('must contain only digits and + - ( )');
  });

  it('accepts what the server accepts, and the empty string everywhere', () => {
    expect(fieldError('avatar', 'https://example.com/a.png')).toBeNull();
    expect(fieldError('nick', '王小明 😀')).toBeNull();
    for (const f of ['avatar', 'sign', 'email', 'birth', 'tel', 'custom'] as const) {
      expect(fieldError(f, '')).toBeNull();
    }
  });
});
