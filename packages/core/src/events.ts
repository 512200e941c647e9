/** A typed event: `on(listener)` returns a function that unsubscribes. */
export interface Event<T> {
  (listener: (value: T) => void): Disposable;
}

export interface Disposable {
  (): void;
}

/**
 * The emitting side of an `Event<T>`. A listener that throws does not stop the others; its error goes to
 * `onListenerError` (default: dropped, since a broken listener must not crash the component emitting).
 */
export class EventEmitter<T> {
  private listeners: Array<(value: T) => void> = [];

  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  readonly event: Event<T> = (listener) => {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  };

  get size(): number {
    return this.listeners.length;
  }

  emit(value: T): void {
    for (const listener of this.listeners) {
      try {
        listener(value);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  clear(): void {
    this.listeners = [];
  }
}
