import assert from 'node:assert/strict';
import { classifyConsulError, consulStatusCode } from '@shoal/consul/internal';

const response = (statusCode: number, body: unknown) => ({
  isPapi: true,
  isResponse: true,
  message: 'consul: agent.check.pass: not found',
  response: { statusCode, body },
});

describe('classifyConsulError', () => {
  it('maps 403 to a permission error with the body, not the message', () => {
    const e = classifyConsulError(
      response(403, 'Permission denied: token lacks permission'),
      'agent.service.register',
      'http://c:8500',
    );
    assert.equal(e.code, 'SHOAL_ERR_CONSUL_PERMISSION_DENIED');
    assert.equal(e.retryable, false);
    assert.equal(consulStatusCode(e), 403);
    assert.match(e.message, /agent\.service\.register was denied by http:\/\/c:8500 \(HTTP 403\): Permission denied/);
  });

  it('maps 404 and 400 to request errors carrying the status', () => {
    const e = classifyConsulError(
      response(404, 'Unknown check ID "service:x". Ensure that the check ID is passed, not the check name.'),
      'agent.check.pass',
      't',
    );
    assert.equal(e.code, 'SHOAL_ERR_CONSUL_REQUEST');
    assert.equal(consulStatusCode(e), 404);
    assert.match(e.message, /Unknown check ID/);
    assert.equal(
      classifyConsulError(response(400, 'Invalid wait time'), 'health.service', 't').code,
      'SHOAL_ERR_CONSUL_REQUEST',
    );
  });

  it('maps 5xx, 429 and connection failures to retryable unavailable errors', () => {
    for (const err of [
      response(500, 'boom'),
      response(429, ''),
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    ]) {
      const e = classifyConsulError(err, 'health.service', 't');
      assert.equal(e.code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
      assert.equal(e.retryable, true);
      assert.equal(e.cause, err);
    }
    assert.match(
      classifyConsulError(Object.assign(new Error('x'), { code: 'ECONNRESET' }), 'op', 't').message,
      /\(ECONNRESET\)/,
    );
  });

  it('maps an abort to SHOAL_ERR_ABORTED and client validation to a request error', () => {
    assert.equal(classifyConsulError({ isPapi: true, isAbort: true }, 'op', 't').code, 'SHOAL_ERR_ABORTED');
    assert.equal(
      classifyConsulError({ isValidation: true, message: 'name required' }, 'op', 't').code,
      'SHOAL_ERR_CONSUL_REQUEST',
    );
  });
});
