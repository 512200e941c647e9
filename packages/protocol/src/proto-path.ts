import { fileURLToPath } from 'node:url';

/**
 * Absolute path of `shoal/v1/coordinator.proto`, shipped in this package's `proto/` folder and found relative to
 * this module (so it works from `node_modules`, a workspace link or a bundle that keeps the folder).
 */
export const PROTO_PATH: string = fileURLToPath(new URL('../proto/shoal/v1/coordinator.proto', import.meta.url));

/** The folder to pass as an include path when another `.proto` imports `shoal/v1/coordinator.proto`. */
export const PROTO_INCLUDE_DIR: string = fileURLToPath(new URL('../proto/', import.meta.url));

/** Protocol version spoken by this package (`Hello.protocolVersion`). */
export const PROTOCOL_VERSION = 1;
