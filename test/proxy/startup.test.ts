import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { takeInstanceOption } from '../../src/proxy/startup.js';

describe('the instance selector in options', () => {
  it('accepts -c instance=, -cinstance=, --instance= and a bare instance=', () => {
    for (const options of ['-c instance=db1', '-cinstance=db1', '--instance=db1', 'instance=db1']) {
      assert.deepEqual(takeInstanceOption(options), { instanceName: 'db1', rest: '' }, options);
    }
  });

  it('keeps the other options, re-escaped', () => {
    assert.deepEqual(takeInstanceOption('-c search_path=a\\ b -c instance=db2 --work_mem=64MB'), {
      instanceName: 'db2',
      rest: '-c search_path=a\\ b --work_mem=64MB',
    });
  });

  it('leaves options without a selector alone', () => {
    assert.deepEqual(takeInstanceOption('-c statement_timeout=5s'), {
      instanceName: undefined,
      rest: '-c statement_timeout=5s',
    });
  });
});
