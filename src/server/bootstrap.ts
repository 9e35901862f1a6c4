import { createPersonalAccessToken, hashToken } from '../auth/personal-access-tokens.js';
import { writeFileAtomic } from '../files.js';
import { findIdentityByTokenHash, findIdentityByUserName, insertIdentity } from '../identities/store.js';
import type { Store } from '../store/store.js';
import { readAdminToken } from './data-dir.js';

const BOOTSTRAP_ADMIN = 'admin@pier.local';

/**
 * On first start: the workspace admin and a personal access token for it. The
 * token is stored hashed; the plain text lives only in `<data-dir>/admin-token`
 * (mode 0600, written whole: never readable by others, never half-written),
 * which `pier status -o env` reads.
 */
export async function bootstrapAdmin(
  store: Store,
  layout: { adminTokenFile: string; dataDir: string },
): Promise<{ userName: string }> {
  let admin = await findIdentityByUserName(store, BOOTSTRAP_ADMIN);
  if (!admin)
    admin = await insertIdentity(store, {
      userName: BOOTSTRAP_ADMIN,
      displayName: 'Pier admin',
      isAdmin: true,
    });
  const saved = await readAdminToken(layout);
  if (!saved || !(await findIdentityByTokenHash(store, hashToken(saved)))) {
    const { token } = await createPersonalAccessToken(store, admin.id, { comment: 'pier bootstrap admin' });
    await writeFileAtomic(layout.adminTokenFile, `${token}\n`, 0o600);
  }
  return { userName: admin.user_name };
}
