// Public API of @shoal/grpc: filled in by its issue.
export {};
