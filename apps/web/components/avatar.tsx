'use client';
import { useEffect, useRef, useState } from 'react';
import { initials, paletteIndex, webUrl } from '../lib/profile';

/**
 * A profile picture: a plain <img> for http(s) URLs only (anything else is never a source), the
 * initials on a colour of the account when there is none or it fails to load.
 */
export function Avatar({
  src,
  nick,
  account,
  size = 'md',
}: {
  src: string | undefined;
  nick: string;
  account: string;
  size?: 'sm' | 'md' | 'lg';
}) {
  const url = webUrl(src);
  const [failed, setFailed] = useState<string | null>(null);
  const img = useRef<HTMLImageElement>(null);
  // An image that failed before the page hydrated fired its error event before React listened.
  useEffect(() => {
    const el = img.current;
    if (url && el?.complete && el.naturalWidth === 0) setFailed(url);
  }, [url]);
  const className = `avatar avatar-${size}`;
  if (url && failed !== url) {
    return (
      <img
        ref={img}
        className={className}
        src={url}
        alt=""
        referrerPolicy="no-referrer"
        loading="lazy"
        decoding="async"
        onError={() => setFailed(url)}
      />
    );
  }
  return (
    <span className={`${className} avatar-initials palette-${paletteIndex(account)}`} aria-hidden>
      {initials(nick, account)}
    </span>
  );
}
