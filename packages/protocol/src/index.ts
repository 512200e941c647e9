export { PROTO_PATH, PROTO_INCLUDE_DIR, PROTOCOL_VERSION } from './proto-path.js';
export { LATENCY_BUCKETS_MS, LATENCY_BUCKET_COUNT, latencyBucketIndex, latencyQuantile } from './latency-buckets.js';
export { LIMITS, SERVICE_NAME_PATTERN, INSTANCE_ID_PATTERN, CUSTOM_METRIC_NAME_PATTERN } from './limits.js';
export type { Limits } from './limits.js';
export { SERVICE_NAME, INSTANCE_ID, METRIC_NAME, isName, isServiceName, isInstanceId, isMetricName } from './names.js';
export type { NameRule } from './names.js';
export { emptyLoadReport } from './messages.js';
export type {
  AgentMessage,
  Capacity,
  CoordinatorMessage,
  Directive,
  Drain,
  Hello,
  LoadReport,
  ReportRequest,
  ReportResponse,
  WireAgentMessage,
  WireCoordinatorMessage,
} from './messages.js';
export { ProtocolValidationError } from './validation-error.js';
export { validateHello, validateReport, validateDirective, validateReportRequest } from './validate.js';
export { reportToJson, reportFromJson, responseToJson, responseFromJson } from './json.js';
export { loadCoordinatorService, PROTO_LOADER_OPTIONS, COORDINATOR_CHANNEL_OPTIONS } from './coordinator-service.js';
export type {
  CoordinatorClient,
  CoordinatorClientConstructor,
  CoordinatorHandlers,
  GrpcModule,
  LoadedCoordinatorService,
} from './coordinator-service.js';
export { AUTHORIZATION_KEY, bearer, parseBearer } from './auth.js';
