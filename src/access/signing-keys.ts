import { generateSigningKey, type JsonWebKeySet, publicJwks } from '../auth/credentials.js';
import { loadMasterKey, type MasterKey } from '../auth/master-key.js';
import { noteFailure } from '../failures.js';
import { SAFETY_POLL_MS } from '../store/notifications.js';
import type { Store } from '../store/store.js';
import {
  dropRetiredSigningKeys,
  insertSigningKey,
  listSigningKeys,
  recordMasterKeyId,
  rotateSigningKeys,
  type StoredSigningKey,
  sealingMasterKeyIds,
  sealPlaintextSigningKeys,
} from './signing-keys-store.js';

const DAY_MS = 24 * 3600 * 1000;
const MASTER_KEY_LOCK = 0x6d6b6579; // "mkey"

/**
 * The master key that seals this store's secrets (see auth/master-key.ts),
 * checked against the store before anything is written: a wrong or missing
 * key is an error and changes nothing. The first start records the key's id
 * in the store, so every later start, and every node sharing the store, must
 * bring the same key. Serialised across nodes by an advisory lock.
 */
export async function openMasterKey(store: Store, keysDir: string): Promise<MasterKey> {
  return store.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MASTER_KEY_LOCK]);
    const masterKey = await loadMasterKey({ keysDir, sealedWith: await sealingMasterKeyIds(tx) });
    await recordMasterKeyId(tx, masterKey.id);
    return masterKey;
  });
}

/**
 * The keys that sign database credentials, cached from the store. The newest
 * active key signs; every key not yet dropped verifies, so rotating never
 * breaks a token already issued. `reload` runs on every change to the keys
 * (NOTIFY, see store/notifications.ts), so every Pier process sharing a store
 * sees a rotation at once; a slow timer rotates a key that grew old and drops
 * retired keys whose tokens have all expired. Private halves are kept sealed
 * by the master key in the store and unsealed only in memory.
 */
export class SigningKeys {
  private keys: StoredSigningKey[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly options: {
      masterKey: MasterKey;
      rotateAfterDays?: number;
      tokenLifetimeSeconds: number;
    },
  ) {}

  /** Seals for the store what must not sit there in clear (tokens kept for retries). */
  get masterKey(): MasterKey {
    return this.options.masterKey;
  }

  /**
   * Loads the keys, making or rotating the signing key if needed, and keeps
   * them fresh. Private keys an older Pier stored in plain text are sealed,
   * and a fresh key takes over signing: one that was never in plain text.
   */
  async start(maintainMs = SAFETY_POLL_MS): Promise<void> {
    const sealed = await this.store.transaction((tx) => sealPlaintextSigningKeys(tx, this.masterKey));
    if (sealed > 0) await this.rotate();
    await this.ensureCurrent();
    this.timer = setInterval(
      () => void this.ensureCurrent().catch((error) => noteFailure('signing-keys.maintain', error)),
      maintainMs,
    );
    this.timer.unref();
  }

  /** Reads the keys again (another process rotated them). Only reads: see followChanges. */
  async reload(): Promise<void> {
    this.keys = await listSigningKeys(this.store, this.masterKey);
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
      await insertSigningKey(tx, this.masterKey, key);
      await rotateSigningKeys(tx, key.kid, this.options.tokenLifetimeSeconds);
    });
    this.keys = await listSigningKeys(this.store, this.masterKey);
    return this.current();
  }

  private async ensureCurrent(): Promise<void> {
    // A retired key stops verifying as soon as its last token expired, not at the next rotation.
    await dropRetiredSigningKeys(this.store, this.options.tokenLifetimeSeconds);
    this.keys = await listSigningKeys(this.store, this.masterKey);
    const active = this.keys.find((k) => !k.retiredAt);
    const maxAge = (this.options.rotateAfterDays ?? 30) * DAY_MS;
    if (!active || Date.now() - Date.parse(active.createdAt) > maxAge) await this.rotate();
  }
}
