// The default instance identity lives in @shoal/core (one formula for every package); re-exported here because
// @shoal/consul's public API has exported these names.
export { defaultInstanceId, firstNonInternalIPv4 } from '@shoal/core';
