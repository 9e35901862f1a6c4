import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PierError } from '../errors.js';
import { writeFileAtomic } from '../files.js';

/**
 * The master key seals the secrets Pier keeps in its store (the private
 * halves of the credential signing keys, the tokens kept for `request_id`
 * retries) with AES-256-GCM, so a copy of the store alone cannot forge or
 * replay credentials. It is 32 random bytes, written base64 on one line: in
 * `<data-dir>/keys/master.key` (mode 0600), or given as `PIER_MASTER_KEY`.
 */

const MASTER_KEY_ENV = 'PIER_MASTER_KEY';
const MASTER_KEY_FILE = 'master.key';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const ALGORITHM = 'A256GCM';

/** A secret as the store keeps it. `key` names the master key that sealed it, so keys can rotate. */
export interface SealedSecret {
  alg: typeof ALGORITHM;
  key: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

export class MasterKey {
  /** A public fingerprint of the key (never the key itself): what sealed secrets record. */
  readonly id: string;

  constructor(
    private readonly key: Buffer,
    /** Where it came from, for messages: `PIER_MASTER_KEY` or the file's path. */
    readonly source: string,
  ) {
    this.id = createHash('sha256').update('pier master key id\0').update(key).digest('hex').slice(0, 16);
  }

  /**
   * Encrypts `plaintext`; `context` (e.g. `signing_keys:<kid>`) is bound to
   * the ciphertext, so a sealed value copied to another row does not open there.
   *
   * @example
   * const sealed = masterKey.seal(JSON.stringify(privateJwk), `signing_keys:${kid}`);
   * masterKey.open(sealed, `signing_keys:${kid}`); // the JSON again
   */
  seal(plaintext: string, context: string): SealedSecret {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return {
      alg: ALGORITHM,
      key: this.id,
      iv: iv.toString('base64'),
      ciphertext: ciphertext.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
    };
  }

  /**
   * Decrypts what `seal` made with this key and `context`. Anything else is
   * an internal error (logged, never shown to an API caller): the start-up
   * check makes it happen only if nodes sharing a store run with different keys.
   */
  open(sealed: SealedSecret, context: string): string {
    if (sealed.alg !== ALGORITHM || sealed.key !== this.id) {
      throw new PierError(
        'INTERNAL_ERROR',
        `A secret in the store (${context}) is sealed with master key ${sealed.key}, not ${this.id} from ${this.source}: every node sharing a store needs the same ${MASTER_KEY_ENV}.`,
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    try {
      return Buffer.concat([
        decipher.update(Buffer.from(sealed.ciphertext, 'base64')),
        decipher.final(),
      ]).toString('utf8');
    } catch (cause) {
      throw new PierError('INTERNAL_ERROR', `A secret in the store (${context}) fails its integrity check.`, {
        cause,
      });
    }
  }

  /**
   * A keyed hash (HMAC-SHA256, hex) of `value` under a key derived from the
   * master key for `context` (HKDF-SHA256): what the store keeps instead of
   * a secret a client presents (OAuth client secrets). Without the master
   * key a copy of the store cannot even test a guess against it.
   *
   * @example
   * masterKey.mac(secret, 'oauth_secrets'); // '3f9c…' (64 hex digits)
   */
  mac(value: string, context: string): string {
    let key = this.macKeys.get(context);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), `pier mac:${context}`, 32));
      this.macKeys.set(context, key);
    }
    return createHmac('sha256', key).update(value).digest('hex');
  }

  private readonly macKeys = new Map<string, Buffer>();
}

/**
 * The master key to run with, given the ids of the keys the store's secrets
 * are sealed with. `PIER_MASTER_KEY` wins over the file. A new key (and file)
 * is made only when the store holds nothing sealed; a missing or different key
 * against a sealed store is an error naming the fix, and changes nothing.
 */
export async function loadMasterKey(options: {
  keysDir: string;
  sealedWith: readonly string[];
  env?: NodeJS.ProcessEnv;
}): Promise<MasterKey> {
  const env = options.env ?? process.env;
  const file = join(options.keysDir, MASTER_KEY_FILE);
  let key: MasterKey | undefined;
  if (env[MASTER_KEY_ENV])
    key = new MasterKey(parseMasterKey(env[MASTER_KEY_ENV], MASTER_KEY_ENV), MASTER_KEY_ENV);
  else {
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new PierError('INVALID_STATE', `Cannot read the master key ${file} (${error.code}).`, {
        cause: error,
      });
    });
    if (text !== undefined) key = new MasterKey(parseMasterKey(text, file), file);
  }
  if (key) {
    const others = options.sealedWith.filter((id) => id !== key.id);
    if (others.length > 0) throw wrongKey(key, others);
    return key;
  }
  if (options.sealedWith.length > 0) {
    throw new PierError(
      'INVALID_STATE',
      `The store's secrets are sealed with master key ${options.sealedWith.join(', ')}, but there is no master key: ${MASTER_KEY_ENV} is unset and ${file} does not exist. Restore that file from a backup, or set ${MASTER_KEY_ENV} to the key this store was started with (e.g. the content of another node's keys/${MASTER_KEY_FILE}).`,
    );
  }
  const created = randomBytes(KEY_BYTES);
  await writeFileAtomic(file, `${created.toString('base64')}\n`);
  return new MasterKey(created, file);
}

/** 32 bytes, base64 (or base64url); surrounding whitespace is ignored. */
function parseMasterKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) || key.length !== KEY_BYTES) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `${source} is not a master key: it must be ${KEY_BYTES} random bytes in base64 (make one with \`openssl rand -base64 32\`).`,
    );
  }
  return key;
}

function wrongKey(key: MasterKey, sealedWith: readonly string[]): PierError {
  return new PierError(
    'INVALID_STATE',
    `The store's secrets are sealed with master key ${sealedWith.join(', ')}, but ${key.source} is master key ${key.id}. Start Pier with the master key this store was started with (${MASTER_KEY_ENV}, or the data dir's keys/${MASTER_KEY_FILE}).`,
  );
}
