// Public API of @shoal/policy: filled in by its issue.
export {};
