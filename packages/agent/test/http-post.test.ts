import assert from 'node:assert/strict';
import net from 'node:net';
import { ManualClock } from '@shoal/core';
import { KeepAliveConnection, parseResponse } from '../src/http-post.js';

const parse = (text: string, ended = false) => parseResponse(Buffer.from(text, 'latin1'), ended, 1024);

describe('the report client (http-post)', () => {
  describe('whether an answer leaves the connection reusable', () => {
    const table: Array<[string, string, boolean, boolean]> = [
      ['HTTP/1.1 with Content-Length', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}', false, true],
      [
        'HTTP/1.1 with Connection: close',
        'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}',
        false,
        false,
      ],
      ['HTTP/1.0 without keep-alive', 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}', false, false],
      [
        'HTTP/1.0 with keep-alive',
        'HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\n{}',
        false,
        true,
      ],
      ['bytes after the body', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP', false, false],
      ['a close-delimited body', 'HTTP/1.1 200 OK\r\n\r\n{}', true, false],
      [
        'a complete chunked body',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
        false,
        true,
      ],
      [
        'a chunked body with trailers',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nx-t: 1\r\n\r\n',
        false,
        true,
      ],
      [
        'a chunked body whose last empty line has not arrived',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n',
        false,
        false,
      ],
    ];
    for (const [name, text, ended, reusable] of table) {
      it(`${name}: ${reusable ? 'reusable' : 'not reusable'}`, () => {
        const r = parse(text, ended);
        assert.ok(r, 'a complete answer');
        assert.equal(r.body.toString(), '{}');
        assert.equal(r.reusable, reusable);
      });
    }
  });

  describe('KeepAliveConnection', () => {
    let server: net.Server;
    let port: number;
    const accepted: net.Socket[] = [];
    before(async () => {
      server = net.createServer((s) => accepted.push(s));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as net.AddressInfo).port;
    });
    after(async () => {
      for (const s of accepted) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const open = async (): Promise<net.Socket> => {
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      return socket;
    };
    const closed = (s: net.Socket) =>
      new Promise((resolve) => (s.destroyed ? resolve(null) : s.once('close', resolve)));

    it('gives back the parked connection once, and closes it after idleMs on its clock', async () => {
      const clock = new ManualClock();
      const slot = new KeepAliveConnection(clock, 4_000);
      const socket = await open();
      slot.park(socket);
      assert.equal(slot.take(), socket);
      assert.equal(slot.take(), undefined);
      slot.park(socket);
      clock.advance(3_999);
      assert.equal(socket.destroyed, false);
      clock.advance(1);
      assert.equal(socket.destroyed, true);
      assert.equal(slot.take(), undefined);
    });

    it('drops a parked connection the server closes or writes to, and closes it on close()', async () => {
      const slot = new KeepAliveConnection(new ManualClock());
      const a = await open();
      slot.park(a);
      accepted.at(-1)!.end(); // the server's FIN while idle
      await closed(a);
      assert.equal(slot.take(), undefined);
      const b = await open();
      slot.park(b);
      accepted.at(-1)!.write('HTTP/1.1 408 Request Timeout\r\n\r\n'); // bytes that answer nothing
      await closed(b);
      assert.equal(slot.take(), undefined);
      const c = await open();
      slot.park(c);
      slot.close();
      assert.equal(c.destroyed, true);
    });
  });
});
