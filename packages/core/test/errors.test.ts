import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ERROR_CODES,
  InvalidArgumentError,
  NoEndpointsError,
  ShoalError,
  ConsulUnavailableError,
  hasErrorCode,
  isShoalError,
} from '@shoal/core';

describe('errors', () => {
  it('carries a stable code, the cause and a retryable flag', () => {
    const cause = new Error('ECONNREFUSED');
    const err = new ConsulUnavailableError('consul is down', { cause });
    assert.equal(err.code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
    assert.equal(err.cause, cause);
    assert.equal(err.retryable, true);
    assert.equal(err.name, 'ConsulUnavailableError');
    assert.ok(err instanceof ShoalError);
    assert.ok(err instanceof Error);
    assert.equal(new InvalidArgumentError('x').retryable, false);
  });

  it('recognises errors from another copy of the package by their brand', () => {
    const foreign = Object.assign(new Error('x'), {
      [Symbol.for('shoal.error')]: true,
      code: 'SHOAL_ERR_NO_ENDPOINTS',
    });
    assert.equal(isShoalError(foreign), true);
    assert.equal(hasErrorCode(foreign, 'SHOAL_ERR_NO_ENDPOINTS'), true);
    assert.equal(isShoalError(new Error('plain')), false);
    assert.equal(isShoalError(null), false);
    assert.equal(isShoalError('SHOAL_ERR_NO_ENDPOINTS'), false);
    assert.equal(hasErrorCode(new NoEndpointsError('none'), 'SHOAL_ERR_TIMEOUT'), false);
  });

  it('documents every error code in the package README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) assert.match(readme, new RegExp(`\\b${code}\\b`), code);
    const documented = [...readme.matchAll(/`(SHOAL_ERR_[A-Z_]+)`/g)].map((m) => m[1]);
    for (const code of documented) assert.ok(code! in ERROR_CODES, `README lists unknown code ${code}`);
  });
});
