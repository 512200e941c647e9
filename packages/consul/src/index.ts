// Public API of @shoal/consul: filled in by its issue.
export {};
