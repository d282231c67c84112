import type { Metadata } from 'next';
import { ProfileForm } from '../../../components/profile-form';

export const metadata: Metadata = { title: 'My profile' };

/** My profile, every field editable. The private layout already prefetched `user.getMyInfo`. */
export default function MePage() {
  return <ProfileForm />;
}
