// Internals shared by Shoal's own packages (`@shoal/core/internal`). Not a public API: names here may change in
// any release.
export { RingBuffer } from './ring-buffer.js';
