// Public API of @shoal/agent: filled in by its issue.
export {};
