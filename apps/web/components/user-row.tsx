import type { Profile } from '@namecard/db/schema';
import Link from 'next/link';
import { Avatar } from './avatar';
import { Pending } from './pending';

/** One person in a list (directory, friends): avatar, nick, account, signature; links to the profile. */
export function UserRow({ user }: { user: Profile }) {
  return (
    <li>
      <Link href={`/users/${encodeURIComponent(user.account)}`} className="user-row">
        <Avatar src={user.avatar} nick={user.nick} account={user.account} />
        <span className="user-row-text">
          <span className="user-row-nick">{user.nick || user.account}</span>
          <span className="user-row-account">@{user.account}</span>
          {user.sign && <span className="user-row-sign">{user.sign}</span>}
        </span>
        <Pending />
      </Link>
    </li>
  );
}
