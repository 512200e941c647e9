// Public API of @shoal/protocol: filled in by its issue.
export {};
