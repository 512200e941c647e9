/** The orders "business": an in-memory store per replica, and the request validation a real service would do. */
import { randomUUID } from 'node:crypto';

export interface Order {
  id: string;
  item: string;
  quantity: number;
  createdAt: string;
  /** The replica that took the order (each replica keeps its own store in this example). */
  instanceId: string;
}

export class ValidationError extends Error {
  override readonly name = 'ValidationError';
}

export function parseNewOrder(body: unknown): { item: string; quantity: number } {
  if (typeof body !== 'object' || body === null) throw new ValidationError('body must be a JSON object');
  const { item, quantity } = body as Record<string, unknown>;
  if (typeof item !== 'string' || item.length === 0 || item.length > 100) {
    throw new ValidationError(`item must be a string of 1-100 characters, got ${JSON.stringify(item)}`);
  }
  if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1 || quantity > 1000) {
    throw new ValidationError(`quantity must be an integer 1-1000, got ${JSON.stringify(quantity)}`);
  }
  return { item, quantity };
}

export class OrderStore {
  private readonly orders = new Map<string, Order>();
  constructor(private readonly instanceId: string) {}

  create(input: { item: string; quantity: number }): Order {
    const order: Order = {
      id: randomUUID(),
      ...input,
      createdAt: new Date().toISOString(),
      instanceId: this.instanceId,
    };
    this.orders.set(order.id, order);
    // Bounded, like any example that may run for a while.
    if (this.orders.size > 10_000) this.orders.delete(this.orders.keys().next().value!);
    return order;
  }

  get(id: string): Order | undefined {
    return this.orders.get(id);
  }

  get size(): number {
    return this.orders.size;
  }
}
