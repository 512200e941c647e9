import { InvalidArgumentError, describeValue } from '@shoal/core';

/**
 * Non-cryptographic 32-bit hashing for consistent-hashing strategies. Strings are hashed as their UTF-8 bytes
 * (computed on the fly, without allocating), so `'key'` and `Buffer.from('key')` land on the same endpoint.
 * FNV-1a over the bytes, finished with murmur3's fmix32 avalanche.
 */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnvByte(h: number, byte: number): number {
  return Math.imul(h ^ byte, FNV_PRIME);
}

/** Hashes a string (as UTF-8) or bytes to an unsigned 32-bit integer. `seed` selects an independent hash. */
export function hashKey(key: string | Uint8Array, seed = 0): number {
  let h = (FNV_OFFSET ^ Math.imul(seed, 0x9e3779b1)) | 0;
  if (typeof key === 'string') {
    const n = key.length;
    for (let i = 0; i < n; i++) {
      let c = key.charCodeAt(i);
      if (c < 0x80) {
        h = fnvByte(h, c);
      } else if (c < 0x800) {
        h = fnvByte(h, 0xc0 | (c >> 6));
        h = fnvByte(h, 0x80 | (c & 0x3f));
      } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
        const lo = key.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          i++;
          c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
          h = fnvByte(h, 0xf0 | (c >> 18));
          h = fnvByte(h, 0x80 | ((c >> 12) & 0x3f));
          h = fnvByte(h, 0x80 | ((c >> 6) & 0x3f));
          h = fnvByte(h, 0x80 | (c & 0x3f));
        } else {
          // A lone surrogate encodes as U+FFFD, as Buffer.from does.
          h = fnvByte(fnvByte(fnvByte(h, 0xef), 0xbf), 0xbd);
        }
      } else if (c >= 0xd800 && c <= 0xdfff) {
        h = fnvByte(fnvByte(fnvByte(h, 0xef), 0xbf), 0xbd);
      } else {
        h = fnvByte(h, 0xe0 | (c >> 12));
        h = fnvByte(h, 0x80 | ((c >> 6) & 0x3f));
        h = fnvByte(h, 0x80 | (c & 0x3f));
      }
    }
  } else if (key instanceof Uint8Array) {
    for (let i = 0; i < key.length; i++) h = fnvByte(h, key[i]!);
  } else {
    throw new InvalidArgumentError(`key must be a string or a Uint8Array/Buffer, got ${describeValue(key)}`);
  }
  return fmix32(h);
}

/** Mixes a base hash with a small integer (a virtual-node or attempt number) into a new 32-bit hash. */
export function mixHash(base: number, n: number): number {
  return fmix32((fmix32(base ^ Math.imul(n + 1, 0x9e3779b1)) + 0x7f4a7c15) | 0);
}
