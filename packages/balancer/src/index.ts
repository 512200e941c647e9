// Public API of @shoal/balancer: filled in by its issue.
export {};
