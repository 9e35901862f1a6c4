import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Credential, CredentialCache, type CredentialRefreshError } from 'pier/client';

/** A source whose credentials live `lifetimeMs`, and which fails while `failing` is set. */
function source(lifetimeMs: number) {
  const state = {
    calls: 0,
    failing: false,
    description: 'test source',
    async fetchCredential(): Promise<Credential> {
      state.calls++;
      await sleep(20);
      if (state.failing) throw new Error('the API is down');
      return { token: `token-${state.calls}`, expiresAt: Date.now() + lifetimeMs };
    },
  };
  return state;
}

function cache(from: ReturnType<typeof source>, errors: CredentialRefreshError[] = []) {
  return new CredentialCache({
    source: from,
    refreshBeforeMs: 600_000,
    retry: { initialDelayMs: 50, maxDelayMs: 200 },
    onRefresh() {},
    onError: (report) => errors.push(report),
  });
}

describe('the credential cache', () => {
  it('shares one request among concurrent callers and then answers from the cache', async () => {
    const from = source(60_000);
    const c = cache(from);
    const passwords = await Promise.all(Array.from({ length: 20 }, () => c.password()));
    assert.deepEqual(new Set(passwords), new Set(['token-1']));
    assert.equal(c.password(), 'token-1'); // no promise: a new session does not wait
    assert.equal(from.calls, 1);
    c.close();
  });

  it('refreshes halfway through a lifetime shorter than twice refreshBefore', async () => {
    const from = source(600);
    const c = cache(from);
    await c.password();
    await sleep(200);
    assert.equal(from.calls, 1);
    await sleep(250);
    assert.equal(from.calls, 2);
    assert.equal(c.password(), 'token-2');
    c.close();
  });

  it('keeps serving the valid credential while refreshes fail, with growing backoff', async () => {
    const from = source(3_000);
    const errors: CredentialRefreshError[] = [];
    const c = cache(from, errors);
    await c.password();
    from.failing = true;
    await sleep(2_500); // refresh at 1.5 s, then retries
    assert.equal(c.password(), 'token-1');
    assert.ok(errors.length >= 3, `${errors.length} reports`);
    assert.deepEqual(
      errors.map((e) => e.attempt),
      errors.map((_, i) => i + 1),
    );
    assert.ok(errors.every((e) => e.retryInMs <= 200 && e.currentExpiresAt !== undefined));
    from.failing = false;
    await sleep(400);
    assert.match(String(c.password()), /^token-\d+$/);
    assert.notEqual(c.password(), 'token-1');
    c.close();
  });

  it('fails a login only when no credential is valid', async () => {
    const from = source(60_000);
    from.failing = true;
    const c = cache(from);
    await assert.rejects(Promise.resolve(c.password()), /the API is down/);
    from.failing = false;
    assert.equal(await c.password(), `token-${from.calls}`);
    c.close();
  });

  it('stops refreshing once closed', async () => {
    const from = source(200);
    const c = cache(from);
    await c.password();
    c.close();
    await sleep(400);
    assert.equal(from.calls, 1);
  });
});
