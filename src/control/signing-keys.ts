import { generateSigningKey, type JsonWebKeySet, publicJwks } from '../auth/credentials.js';
import {
  insertSigningKey,
  listSigningKeys,
  rotateSigningKeys,
  type StoredSigningKey,
} from '../store/signing-keys.js';
import type { Store } from '../store/store.js';

const DAY_MS = 24 * 3600 * 1000;

/**
 * The keys that sign database credentials, cached from the store. The newest
 * active key signs; every key not yet dropped verifies, so rotating never
 * breaks a token already issued. Refreshed from the store periodically, so
 * every Pier process sharing a store sees a rotation.
 */
export class SigningKeys {
  private keys: StoredSigningKey[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly options: { rotateAfterDays?: number; tokenLifetimeSeconds: number },
  ) {}

  /** Loads the keys, making or rotating the signing key if needed, and keeps them fresh. */
  async start(refreshMs = 10_000): Promise<void> {
    await this.ensureCurrent();
    this.timer = setInterval(() => void this.ensureCurrent().catch(() => {}), refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The key new credentials are signed with. */
  current(): StoredSigningKey {
    const key = this.keys.find((k) => !k.retiredAt);
    if (!key) throw new Error('No active signing key: SigningKeys.start() was not awaited');
    return key;
  }

  /** The JWKS: every key that may verify a token still in use. */
  jwks(): JsonWebKeySet {
    return publicJwks(this.keys);
  }

  /** Makes a new signing key now; older keys keep verifying until their tokens expire. */
  async rotate(): Promise<StoredSigningKey> {
    const key = await generateSigningKey();
    await this.store.transaction(async (tx) => {
      await insertSigningKey(tx, key);
      await rotateSigningKeys(tx, key.kid, this.options.tokenLifetimeSeconds);
    });
    this.keys = await listSigningKeys(this.store);
    return this.current();
  }

  private async ensureCurrent(): Promise<void> {
    this.keys = await listSigningKeys(this.store);
    const active = this.keys.find((k) => !k.retiredAt);
    const maxAge = (this.options.rotateAfterDays ?? 30) * DAY_MS;
    if (!active || Date.now() - Date.parse(active.createdAt) > maxAge) await this.rotate();
  }
}
