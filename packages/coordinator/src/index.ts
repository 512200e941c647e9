// Public API of @shoal/coordinator: filled in by its issue.
export {};
