import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CredentialRefreshError, createPool, type PierPool } from 'pier/client';
import { eventually, removePier } from '../helpers/pier.js';
import { type InstanceUnderTest, pierWithInstance } from './instance.js';
import { steadyLoad } from './load.js';
import { type SwitchableApi, switchableApi } from './switchable-api.js';

// Credentials live 5 s: the pool refreshes every 2.5 s and its connections live 5 s.
const TTL_SECONDS = 5;

describe('a pool under load while its credentials expire', () => {
  let target: InstanceUnderTest;
  let forwarder: SwitchableApi;

  before(async () => {
    target = await pierWithInstance('refresh-db', ['--credential-ttl', String(TTL_SECONDS)]);
    forwarder = await switchableApi(target.pier.apiUrl);
  });
  after(async () => {
    await forwarder?.close();
    if (target) await removePier(target.pier);
  });

  function pool(): PierPool {
    return createPool({
      instanceName: target.name,
      port: target.pier.proxyPort,
      sslRootCert: target.pier.caCertPath,
      workspace: { host: forwarder.url, token: target.pier.adminToken },
      max: 4,
      retry: { initialDelayMs: 100, maxDelayMs: 400 },
      env: {},
    });
  }

  it('serves 30 s of steady queries across six expiries without one failure', async () => {
    const p = pool();
    const refreshes: number[] = [];
    p.on('credentialRefresh', ({ expiresAt }) => refreshes.push(expiresAt));
    let logins = 0;
    p.on('connect', () => logins++);
    const load = steadyLoad(p, { workers: 4, pauseMs: 10 });
    await sleep(30_000);
    const result = await load.stop();
    await p.end();
    assert.deepEqual(result.failures, []);
    assert.ok(result.queries > 1000, `only ${result.queries} queries`);
    // 30 s at 2.5 s per refresh: about 12; at least one per expiry.
    assert.ok(refreshes.length >= 30 / TTL_SECONDS, `${refreshes.length} refreshes`);
    assert.equal(new Set(refreshes).size, refreshes.length, 'each refresh brought a new credential');
    // Connections are replaced as credentials age (they live as long as one), so logins
    // with fresh credentials ran all along: 4 connections, each replaced every 5 s.
    assert.ok(logins >= 4 * (30 / TTL_SECONDS), `${logins} logins`);
  });

  it('rides out an API outage during a refresh and recovers when the API returns', async () => {
    const p = pool();
    const errors: CredentialRefreshError[] = [];
    const refreshes: number[] = [];
    p.on('credentialError', (report) => errors.push(report));
    p.on('credentialRefresh', ({ expiresAt }) => refreshes.push(expiresAt));
    const load = steadyLoad(p, { workers: 4, pauseMs: 10 });

    // Short outage: starts just after a refresh, so the next one (2.5 s later) fails and
    // is retried; the API is back before the credential in use expires.
    await eventually(async () => (refreshes.length >= 2 ? true : undefined), 20_000, 'two refreshes');
    const before = refreshes.length;
    forwarder.mode = 'unavailable';
    await sleep(3_000);
    forwarder.mode = 'up';
    await eventually(
      async () => (refreshes.length > before ? true : undefined),
      10_000,
      'a refresh after the outage',
    );
    assert.deepEqual(load.result.failures, [], 'no query failed while the credential was valid');
    assert.ok(errors.length >= 1, 'the failed refreshes were reported');
    assert.match(errors[0].error.message, /503/);
    assert.deepEqual(
      errors.map((e) => e.attempt),
      errors.map((_, i) => i + 1),
    );
    assert.ok(errors.every((e) => e.currentExpiresAt !== undefined && e.retryInMs <= 400));

    // Long outage: the API drops connections for longer than a credential lives. New logins
    // may fail, but only once the last credential has expired; the pool recovers by itself.
    const lastExpiry = () => refreshes[refreshes.length - 1];
    forwarder.mode = 'unreachable';
    const expiryWhenDown = lastExpiry();
    await sleep(TTL_SECONDS * 1000 + 3_000);
    forwarder.mode = 'up';
    const restored = Date.now();
    await eventually(async () => (lastExpiry() > expiryWhenDown ? true : undefined), 10_000, 'recovery');
    await sleep(2_000);
    const result = await load.stop();
    const late = result.failures.filter((f) => f.at >= restored + 3_000);
    assert.deepEqual(late, [], 'queries succeed again once the API is back');
    for (const failure of result.failures) {
      // A login needs the credential valid for another second (the login margin).
      assert.ok(
        failure.at >= expiryWhenDown - 1_000,
        `failed at ${failure.at}, credential valid until ${expiryWhenDown}`,
      );
    }
    assert.ok(errors.some((e) => /Cannot reach/.test(e.error.message)));
    await p.end();
  });
});
