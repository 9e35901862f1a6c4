import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  generateSigningKey,
  issueDatabaseCredential,
  publicJwks,
  verifyDatabaseCredential,
} from '../../src/auth/credentials.js';

const instance = '3f0c7a52-3c2e-4d0f-9b1e-0d9f8a0e6b11';

describe('database credentials', () => {
  it('issues an ES256 JWT with subject, audience, issuer and an RFC3339 expiry', async () => {
    const key = await generateSigningKey();
    const now = new Date('2025-01-01T00:00:00Z');
    const credential = await issueDatabaseCredential(key, {
      subject: 'alice@example.com',
      instanceUids: [instance],
      ttlSeconds: 3600,
      now,
      issuer: 'https://pier.example',
    });
    assert.equal(credential.expiration_time, '2025-01-01T01:00:00.000Z');
    const [header] = credential.token.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(header, 'base64url').toString()), {
      alg: 'ES256',
      kid: key.kid,
      typ: 'JWT',
    });
    const result = await verifyDatabaseCredential(credential.token, publicJwks([key]), {
      now: new Date('2025-01-01T00:30:00Z'),
      issuer: 'https://pier.example',
    });
    assert.ok(result.ok);
    assert.equal(result.claims.sub, 'alice@example.com');
    assert.deepEqual(result.claims.aud, [instance]);
    assert.equal(result.claims.exp, Date.parse('2025-01-01T01:00:00Z') / 1000);
  });

  it('publishes only public keys', async () => {
    const key = await generateSigningKey();
    const jwks = publicJwks([key]);
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kid, key.kid);
    assert.equal(jwks.keys[0].d, undefined);
    assert.ok(key.privateJwk.d);
  });

  it('accepts any key of the set, so keys rotate', async () => {
    const [old, current] = [await generateSigningKey(), await generateSigningKey()];
    const set = publicJwks([current, old]);
    for (const key of [old, current]) {
      const { token } = await issueDatabaseCredential(key, {
        subject: 'a',
        instanceUids: [instance],
        ttlSeconds: 60,
      });
      assert.ok((await verifyDatabaseCredential(token, set)).ok);
    }
    const { token } = await issueDatabaseCredential(old, {
      subject: 'a',
      instanceUids: [instance],
      ttlSeconds: 60,
    });
    const retired = await verifyDatabaseCredential(token, publicJwks([current]));
    assert.equal(retired.ok, false);
    assert.equal(!retired.ok && retired.reason, 'unknown_kid');
  });

  it('says when a token expired', async () => {
    const key = await generateSigningKey();
    const now = new Date('2025-01-01T00:00:00Z');
    const { token } = await issueDatabaseCredential(key, {
      subject: 'a',
      instanceUids: [instance],
      ttlSeconds: 60,
      now,
    });
    const result = await verifyDatabaseCredential(token, publicJwks([key]), {
      now: new Date('2025-01-01T00:01:00Z'),
    });
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, 'expired');
    assert.equal(!result.ok && result.expiredAt, '2025-01-01T00:01:00.000Z');
    assert.match(!result.ok ? result.message : '', /expired at 2025-01-01T00:01:00\.000Z/);
  });

  it('refuses a tampered payload or signature as a bad signature', async () => {
    const key = await generateSigningKey();
    const { token } = await issueDatabaseCredential(key, {
      subject: 'alice',
      instanceUids: [instance],
      ttlSeconds: 60,
    });
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'postgres' })).toString('base64url');
    for (const bad of [
      `${header}.${forged}.${signature}`,
      `${header}.${payload}.${signature.slice(0, -4)}AAAA`,
    ]) {
      const result = await verifyDatabaseCredential(bad, publicJwks([key]));
      assert.equal(!result.ok && result.reason, 'bad_signature');
    }
  });

  it('refuses malformed tokens and other issuers', async () => {
    const key = await generateSigningKey();
    for (const bad of ['', 'not-a-jwt', 'a.b.c', 'dapi123']) {
      const result = await verifyDatabaseCredential(bad, publicJwks([key]));
      assert.equal(!result.ok && result.reason, 'malformed', bad);
    }
    const { token } = await issueDatabaseCredential(key, {
      subject: 'a',
      instanceUids: [instance],
      ttlSeconds: 60,
      issuer: 'elsewhere',
    });
    const result = await verifyDatabaseCredential(token, publicJwks([key]));
    assert.equal(!result.ok && result.reason, 'wrong_issuer');
  });
});
