import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey } from '../../src/proxy/connection-caps.js';
import { LoginThrottle } from '../../src/proxy/login-throttle.js';

/** The throttle's memory, clock (a fake one) and address keys (the rest is in limits.test.ts, over real connections). */
describe('the login throttle', () => {
  it('forgets an address a quiet minute after its last failure, and says how long to wait', async () => {
    let now = 0;
    const throttle = new LoginThrottle({ maxFailures: 2, forgetAfterMs: 60_000 }, () => now);
    for (let i = 0; i < 2; i++) (await throttle.begin('10.0.0.7')).failed();
    now = 15_000;
    assert.throws(() => throttle.refuseIfThrottled('10.0.0.7'), /Try again in 45 s\./);
    throttle.refuseIfThrottled('10.0.0.8');
    now = 60_001;
    throttle.refuseIfThrottled('10.0.0.7');
    assert.equal(throttle.size, 0);
  });

  it('a success does not erase the failures before it', async () => {
    const throttle = new LoginThrottle({ maxFailures: 2 });
    (await throttle.begin('10.0.0.7')).failed();
    (await throttle.begin('10.0.0.7')).succeeded();
    (await throttle.begin('10.0.0.7')).failed();
    assert.throws(() => throttle.refuseIfThrottled('10.0.0.7'), { kind: 'LOGIN_THROTTLED' });
  });

  it('remembers at most maxEntries addresses, dropping the least recent', async () => {
    const throttle = new LoginThrottle({ maxFailures: 1, maxEntries: 100 });
    for (let i = 0; i < 1000; i++) (await throttle.begin(`10.0.${i >> 8}.${i & 255}`)).failed();
    assert.equal(throttle.size, 100);
    throttle.refuseIfThrottled('10.0.0.0');
    assert.throws(() => throttle.refuseIfThrottled('10.0.3.231'), { kind: 'LOGIN_THROTTLED' });
  });

  it('counts an IPv6 client by its /64, which it can roam at will', async () => {
    assert.equal(clientKey('2001:db8:1:2:a:b:c:d'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(clientKey('1::2:3:4:5:6'), '1:0:0:2::/64');
    assert.equal(clientKey('10.0.0.7'), '10.0.0.7');
    const throttle = new LoginThrottle({ maxFailures: 2 });
    (await throttle.begin('2001:db8:1:2::1')).failed();
    (await throttle.begin('2001:db8:1:2:ffff::9')).failed();
    assert.throws(() => throttle.refuseIfThrottled('2001:db8:1:2:5:6:7:8'), /from 2001:db8:1:2::\/64: 2 in/);
    throttle.refuseIfThrottled('2001:db8:1:3::1');
  });

  it('a connection that ends while waiting its turn leaves the line', async () => {
    const throttle = new LoginThrottle({ maxFailures: 1 });
    const first = await throttle.begin('10.0.0.7');
    const ended = new AbortController();
    const waiting = throttle.begin('10.0.0.7', ended.signal);
    ended.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
    first.succeeded();
    assert.equal(throttle.size, 0, 'nothing is left behind');
  });
});
