import assert from 'node:assert/strict';
import { hasErrorCode } from '@shoal/core';
import { parseConfig } from '@shoal/coordinator';
import { TokenAuthenticator, resolveServiceTokens } from '@shoal/coordinator/internal';
import { parseBearer } from '@shoal/protocol';

const ORDERS = 'orders-token-0123456789abcdef';
const USERS = 'users-token-0123456789abcdef';

describe('auth', () => {
  const auth = new TokenAuthenticator(
    new Map([
      ['orders', ORDERS],
      ['users', USERS],
    ]),
  );

  it('accepts the service own token', () => {
    assert.deepEqual(auth.check('orders', `Bearer ${ORDERS}`), { ok: true });
  });

  it('refuses a missing or malformed header as unauthenticated', () => {
    for (const header of [undefined, '', ORDERS, `Basic ${ORDERS}`, 'Bearer ', `Bearer ${ORDERS} extra`]) {
      const r = auth.check('orders', header);
      assert.equal(r.ok, false, String(header));
      assert.equal(!r.ok && r.status, 'unauthenticated');
    }
  });

  it('refuses a wrong token as unauthenticated and another service token as permission denied', () => {
    const wrong = auth.check('orders', `Bearer ${ORDERS.slice(0, -1)}x`);
    assert.equal(!wrong.ok && wrong.status, 'unauthenticated');
    const other = auth.check('orders', `Bearer ${USERS}`);
    assert.equal(!other.ok && other.status, 'permission_denied');
  });

  it('in insecure dev mode lets tokenless services in but still checks services that have a token', () => {
    const dev = new TokenAuthenticator(new Map([['orders', ORDERS]]), true);
    assert.deepEqual(dev.check('users', undefined), { ok: true });
    assert.equal(dev.check('orders', undefined).ok, false);
  });

  it('parses bearer headers case-insensitively', () => {
    assert.equal(parseBearer('bearer abc'), 'abc');
    assert.equal(parseBearer('Bearer a b'), undefined);
  });

  it('refuses to start without tokens unless insecureDev', async () => {
    const base = {
      services: [
        {
          name: 'orders',
          policy: { targets: [{ metric: 'cpu', value: 0.5 }] },
          actuator: { type: 'local', command: 'node' },
        },
      ],
    };
    await assert.rejects(
      resolveServiceTokens(parseConfig(base)),
      (e: Error) =>
        hasErrorCode(e, 'SHOAL_ERR_CONFIG') && /refusing to start without agent authentication/.test(e.message),
    );
    const tokens = await resolveServiceTokens(parseConfig({ ...base, insecureDev: true }));
    assert.equal(tokens.size, 0);
  });
});
