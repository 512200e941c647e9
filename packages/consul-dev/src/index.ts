// Public API of @shoal/consul-dev: filled in by its issue.
export {};
