'use client';
/**
 * My profile, every field editable. Each field is checked with the same zod schema the server
 * uses (`@namecard/db/schema`: same limits, same messages, characters counted as code points)
 * as it is typed, and nothing is sent while a field is wrong; if the server still rejects, its
 * message per field (`error.data.fieldErrors`) appears under that field. Only changed fields
 * are sent. Fields I have not touched follow live changes from my other tabs.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  charCount,
  GENDERS,
  LIMITS,
  profileFields,
  type ProfileField,
  type ProfilePatch,
} from '@namecard/db/schema';
import { type FormEvent, useId, useRef, useState } from 'react';
import { GENDER_LABEL, webUrl } from '../lib/profile';
import { useTRPC } from '../trpc/react';
import { Avatar } from './avatar';

type Kind = 'text' | 'url' | 'textarea' | 'select' | 'email' | 'date' | 'tel' | 'json';

const FIELDS: { name: ProfileField; label: string; kind: Kind; hint?: string }[] = [
  { name: 'nick', label: 'Nick', kind: 'text', hint: 'The name people see.' },
  { name: 'avatar', label: 'Avatar', kind: 'url', hint: 'An image URL starting with https://' },
  { name: 'sign', label: 'Signature', kind: 'textarea', hint: 'A line or two about you.' },
  { name: 'gender', label: 'Gender', kind: 'select' },
  { name: 'birth', label: 'Birth date', kind: 'date' },
  { name: 'email', label: 'Email', kind: 'email', hint: 'Only you and people you add see it.' },
  { name: 'tel', label: 'Phone', kind: 'tel', hint: 'Only you and people you add see it.' },
  { name: 'custom', label: 'Custom', kind: 'json', hint: 'JSON for apps, e.g. {"theme":"dark"}' },
];

const LIMIT: Partial<Record<ProfileField, number>> = {
  nick: LIMITS.nick,
  avatar: LIMITS.avatar,
  sign: LIMITS.sign,
  email: LIMITS.email,
  tel: LIMITS.tel,
  custom: LIMITS.custom,
};

/** The schema's message for a value, or null; JSON errors also say where parsing stopped. */
export function fieldError(field: ProfileField, value: string): string | null {
  const result = profileFields[field].safeParse(value);
  if (result.success) return null;
  const message = firstMessage(result.error.issues) ?? 'is not valid';
  if (field === 'custom' && message === 'must be valid JSON') {
    try {
      JSON.parse(value);
    } catch (error) {
      return `must be valid JSON (${(error as Error).message})`;
    }
  }
  return message;
}

/**
 * The message that explains the problem. A field that may also be `''` is a union, and a union
 * whose other branch stopped early reports only "Invalid input": the reason is inside, in the
 * branch that is not the empty string.
 */
function firstMessage(issues: readonly Issue[]): string | undefined {
  for (const issue of issues) {
    if (issue.code === 'invalid_union' && issue.errors) {
      for (const branch of issue.errors) {
        if (branch.some((i) => i.code === 'invalid_value' && i.values?.includes(''))) continue;
        const inner = firstMessage(branch);
        if (inner) return inner;
      }
    }
    return issue.message;
  }
  return undefined;
}

interface Issue {
  code: string;
  message: string;
  values?: readonly unknown[];
  errors?: readonly (readonly Issue[])[];
}

type Draft = Partial<Record<ProfileField, string>>;
type Status = { kind: 'idle' } | { kind: 'saved' } | { kind: 'error'; message: string };

export function ProfileForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const { data: me, isPending, error } = useQuery(trpc.user.getMyInfo.queryOptions());
  const [draft, setDraft] = useState<Draft>({});
  const [serverErrors, setServerErrors] = useState<Record<string, string[]>>({});
  const [status, setStatus] = useState<Status>({ kind: 'idle' });
  const formRef = useRef<HTMLFormElement>(null);
  const ids = useId();

  const save = useMutation(
    trpc.user.updateMyInfo.mutationOptions({
      onSuccess(profile) {
        queryClient.setQueryData(trpc.user.getMyInfo.queryKey(), profile);
        setDraft({});
        setServerErrors({});
        setStatus({ kind: 'saved' });
      },
      onError(err) {
        const fieldErrors = (err.data as { fieldErrors?: Record<string, string[]> | null } | null)
          ?.fieldErrors;
        if (fieldErrors) setServerErrors(fieldErrors);
        setStatus({
          kind: 'error',
          message: fieldErrors ? 'Not saved: see the fields marked below.' : err.message,
        });
      },
    }),
  );

  if (isPending) return <p className="muted">Loading your profile…</p>;
  if (error || !me)
    return <p className="alert">Your profile could not be loaded: {error?.message}</p>;

  const stored = (field: ProfileField): string => {
    const v = me[field] ?? '';
    return field === 'gender' && v === '' ? 'unknown' : v;
  };
  const value = (field: ProfileField) => draft[field] ?? stored(field);
  const changed = FIELDS.map((f) => f.name).filter(
    (f) => draft[f] !== undefined && draft[f] !== stored(f),
  );
  const clientErrors = Object.fromEntries(
    changed.map((f) => [f, fieldError(f, draft[f]!)] as const).filter(([, m]) => m !== null),
  ) as Partial<Record<ProfileField, string>>;

  const edit = (field: ProfileField, next: string) => {
    setDraft((d) => ({ ...d, [field]: next }));
    setServerErrors(({ [field]: _gone, ...rest }) => rest);
    setStatus({ kind: 'idle' });
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (changed.length === 0) {
      setStatus({ kind: 'error', message: 'Nothing changed.' });
      return;
    }
    const firstBad = FIELDS.find((f) => clientErrors[f.name]);
    if (firstBad) {
      setStatus({ kind: 'error', message: 'Not saved: see the fields marked below.' });
      formRef.current?.querySelector<HTMLElement>(`[name="${firstBad.name}"]`)?.focus();
      return;
    }
    const patch: ProfilePatch = {};
    for (const f of changed) (patch as Record<string, string>)[f] = draft[f]!;
    save.mutate(patch);
  };

  const avatarPreview = webUrl(value('avatar')) ?? undefined;
  return (
    <div className="profile-edit">
      <section className="card hero" aria-label="Preview">
        <Avatar src={avatarPreview} nick={value('nick')} account={me.account} size="lg" />
        <div className="hero-text">
          <h1 className="hero-name">{value('nick') || me.account}</h1>
          <p className="hero-account">@{me.account}</p>
          {value('sign') && <p className="hero-sign">{value('sign')}</p>}
        </div>
      </section>

      <form
        ref={formRef}
        className="card form"
        onSubmit={onSubmit}
        noValidate
        aria-labelledby={`${ids}-title`}
      >
        <div className="form-head">
          <h2 id={`${ids}-title`}>Edit profile</h2>
          <p className="muted small">
            Account <strong>{me.account}</strong> · member since{' '}
            <time dateTime={new Date(me.createTime).toISOString()}>
              {new Date(me.createTime).toISOString().slice(0, 10)}
            </time>
          </p>
        </div>
        <div className="fields">
          {FIELDS.map((f) => (
            <Field
              key={f.name}
              id={`${ids}-${f.name}`}
              field={f}
              value={value(f.name)}
              error={clientErrors[f.name] ?? serverErrors[f.name]?.join(', ') ?? null}
              onChange={(v) => edit(f.name, v)}
            />
          ))}
        </div>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={save.isPending}>
            {save.isPending ? 'Saving…' : 'Save'}
          </button>
          {changed.length > 0 && (
            <button
              type="button"
              className="btn btn-quiet"
              onClick={() => {
                setDraft({});
                setServerErrors({});
                setStatus({ kind: 'idle' });
              }}
            >
              Discard changes
            </button>
          )}
          <p className={`form-status ${status.kind}`} role="status" aria-live="polite">
            {status.kind === 'saved' ? 'Saved.' : status.kind === 'error' ? status.message : ''}
          </p>
        </div>
      </form>
    </div>
  );
}

function Field({
  id,
  field,
  value,
  error,
  onChange,
}: {
  id: string;
  field: (typeof FIELDS)[number];
  value: string;
  error: string | null;
  onChange: (value: string) => void;
}) {
  const limit = LIMIT[field.name];
  const count = charCount(value);
  const describedBy = [field.hint && `${id}-hint`, limit && `${id}-count`, error && `${id}-error`]
    .filter(Boolean)
    .join(' ');
  const common = {
    id,
    name: field.name,
    value,
    'aria-invalid': error ? true : undefined,
    'aria-describedby': describedBy || undefined,
    onChange: (e: { target: { value: string } }) => onChange(e.target.value),
  } as const;
  const wide =
    field.kind !== 'select' &&
    field.kind !== 'date' &&
    field.kind !== 'email' &&
    field.kind !== 'tel';
  return (
    <div className={`field${wide ? ' field-wide' : ''}${error ? ' has-error' : ''}`}>
      <div className="field-top">
        <label htmlFor={id}>{field.label}</label>
        {limit !== undefined && (
          <span id={`${id}-count`} className={`counter${count > limit ? ' over' : ''}`}>
            {count}/{limit}
          </span>
        )}
      </div>
      {field.kind === 'select' ? (
        <select {...common}>
          {GENDERS.map((g) => (
            <option key={g} value={g}>
              {GENDER_LABEL[g]}
            </option>
          ))}
        </select>
      ) : field.kind === 'textarea' || field.kind === 'json' ? (
        <textarea
          {...common}
          rows={field.kind === 'json' ? 4 : 3}
          spellCheck={field.kind !== 'json'}
          className={field.kind === 'json' ? 'mono' : undefined}
        />
      ) : (
        <input
          {...common}
          type={field.kind === 'text' ? 'text' : field.kind}
          autoComplete={AUTOCOMPLETE[field.name]}
          inputMode={field.kind === 'tel' ? 'tel' : undefined}
        />
      )}
      {field.hint && (
        <p id={`${id}-hint`} className="hint">
          {field.hint}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      )}
    </div>
  );
}

const AUTOCOMPLETE: Partial<Record<ProfileField, string>> = {
  nick: 'nickname',
  avatar: 'photo',
  email: 'email',
  birth: 'bday',
  tel: 'tel',
};
