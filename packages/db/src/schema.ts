/**
 * The one place that defines every profile field and its limits.
 * Used by the API's input validation, by the store, by packages/client and by the web forms.
 */
import { z } from 'zod';

export const LIMITS = {
  account: 32,
  nick: 64,
  avatar: 1024,
  sign: 256,
  email: 64,
  tel: 32,
  custom: 1024,
  /** `user.getUsers` and the client's batch size. */
  getUsers: 150,
  /** `admin.getUsers`. */
  adminGetUsers: 200,
  /**
   * Accounts one `user.onChange` subscription may watch besides its own and its friends. The list
   * travels in the SSE GET's URL: 150 accounts of 32 characters are about 6.3 KB URL-encoded,
   * inside the 8 KB request-line limit of common proxies (nginx, most CDNs) and Node's 16 KB.
   */
  watch: 150,
  /** Friends' profiles in one `user.sync` page. */
  syncPage: 500,
  /** Friends one account may add. */
  friends: 3000,
  /** Length of a directory search query. */
  query: 64,
  searchPage: 100,
  token: 256,
} as const;

/** Counts characters as a person does: one per code point, so an emoji or a CJK character is one. */
export const charCount = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

const maxChars = (max: number) =>
  z.string().refine((s) => charCount(s) <= max, { message: `must be at most ${max} characters` });

// Lone UTF-16 surrogates cannot be stored as UTF-8; C0 controls have no place in a one-line field.
const noLoneSurrogates = (s: string) => !/\p{Cs}/u.test(s);
// eslint-disable-next-line no-control-regex
const oneLine = (s: string) => !/[\u0000-\u001f\u007f]/.test(s);
// eslint-disable-next-line no-control-regex
const printable = (s: string) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s);

export const ACCOUNT_PATTERN = /^[A-Za-z0-9_.@-]{1,32}$/;
export const accountSchema = z
  .string()
  .regex(ACCOUNT_PATTERN, 'must be 1 to 32 characters of A-Z a-z 0-9 _ . @ -');

export const GENDERS = ['unknown', 'male', 'female'] as const;
export const genderSchema = z.enum(GENDERS);

const isWebUrl = (s: string) => {
  if (!URL.canParse(s)) return false;
  const { protocol, hostname } = new URL(s);
  return (protocol === 'https:' || protocol === 'http:') && hostname !== '';
};

const isRealDate = (s: string) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
};

const isJson = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const TEL_PATTERN = /^[-+()0-9]+$/;

/** Each editable field; `''` is always allowed and clears the field. */
export const profileFields = {
  nick: maxChars(LIMITS.nick)
    .refine(noLoneSurrogates, 'must be valid Unicode text')
    .refine(oneLine, 'must not contain control characters'),
  avatar: z.union([
    z.literal(''),
    maxChars(LIMITS.avatar).refine(isWebUrl, 'must be an http: or https: URL'),
  ]),
  sign: maxChars(LIMITS.sign)
    .refine(noLoneSurrogates, 'must be valid Unicode text')
    .refine(printable, 'must not contain control characters'),
  gender: z.union([z.literal(''), genderSchema], {
    error: `must be one of ${GENDERS.join(', ')}`,
  }),
  email: z.union([
    z.literal(''),
    maxChars(LIMITS.email)
      .regex(EMAIL_PATTERN, 'must be an address like name@example.com')
      .refine((s) => oneLine(s) && noLoneSurrogates(s), 'must not contain control characters'),
  ]),
  birth: z.union([
    z.literal(''),
    z.string().refine(isRealDate, 'must be a real date as yyyy-MM-dd'),
  ]),
  tel: z.union([
    z.literal(''),
    maxChars(LIMITS.tel).regex(TEL_PATTERN, 'must contain only digits and + - ( )'),
  ]),
  custom: z.union([
    z.literal(''),
    maxChars(LIMITS.custom)
      .refine(noLoneSurrogates, 'must be valid Unicode text')
      .refine(isJson, 'must be valid JSON'),
  ]),
} as const;

export type ProfileField = keyof typeof profileFields;
export const PROFILE_FIELDS = Object.keys(profileFields) as ProfileField[];
/** Fields shown only to the owner, to accounts the owner added as friends, and to admin. */
export const PRIVATE_FIELDS = ['email', 'tel'] as const satisfies readonly ProfileField[];

/** A partial update: every key optional, unknown keys rejected (no mass assignment). */
export const profilePatchSchema = z.strictObject({
  nick: profileFields.nick.optional(),
  avatar: profileFields.avatar.optional(),
  sign: profileFields.sign.optional(),
  gender: profileFields.gender.optional(),
  email: profileFields.email.optional(),
  birth: profileFields.birth.optional(),
  tel: profileFields.tel.optional(),
  custom: profileFields.custom.optional(),
});
export type ProfilePatch = z.infer<typeof profilePatchSchema>;

/** A stored profile as the API returns it. `email` and `tel` are absent where the viewer may not see them. */
export const profileSchema = z.object({
  account: z.string(),
  nick: z.string(),
  avatar: z.string(),
  sign: z.string(),
  gender: z.union([z.literal(''), genderSchema]),
  email: z.string().optional(),
  birth: z.string(),
  tel: z.string().optional(),
  custom: z.string(),
  createTime: z.number(),
  updateTime: z.number(),
});
export type Profile = z.infer<typeof profileSchema>;

export const accountsSchema = (max: number) =>
  z
    .array(accountSchema)
    .min(1, 'must list at least one account')
    .max(max, `must list at most ${max} accounts`);

export const searchInputSchema = z.object({
  query: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .refine((s) => charCount(s) <= LIMITS.query, `must be at most ${LIMITS.query} characters`),
  cursor: z.string().max(512).nullish(),
  limit: z.number().int().min(1).max(LIMITS.searchPage).default(20),
});

export const tokenSchema = z
  .string()
  .min(16, 'must be at least 16 characters')
  .max(LIMITS.token, `must be at most ${LIMITS.token} characters`)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

/** Event ids are decimal sequence numbers, as strings (SSE ids are strings). */
export const eventIdSchema = z.string().regex(/^\d{1,20}$/, 'must be an event id');
