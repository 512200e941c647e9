// Public API of @shoal/http: filled in by its issue.
export {};
