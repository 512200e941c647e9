// Shared with @shoal/policy's report window.
export { RingBuffer } from '@shoal/policy/internal';
