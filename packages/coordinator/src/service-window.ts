// The window over agent reports lives in @shoal/policy (the simulator runs the same one).
export { ServiceWindow, CapacityError, StaleSequenceError } from '@shoal/policy';
export type { InstanceView, ServiceWindowOptions } from '@shoal/policy';
