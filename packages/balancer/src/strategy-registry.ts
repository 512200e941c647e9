import { InvalidArgumentError, assertString, describeValue } from '@shoal/core';
import type {
  Strategy,
  StrategyClass,
  StrategyEnv,
  StrategyFactory,
  StrategyFunction,
  StrategyOptions,
} from './strategy.js';
import { RoundRobinStrategy } from './strategies/round-robin.js';
import { PeakEwmaStrategy } from './strategies/peak-ewma.js';
import { RandomStrategy } from './strategies/random.js';
import { WeightedRoundRobinStrategy } from './strategies/weighted-round-robin.js';
import { LeastConnectionsStrategy } from './strategies/least-connections.js';
import { LeastRequestStrategy } from './strategies/least-request.js';
import { ResponseTimeWeightedStrategy } from './strategies/response-time-weighted.js';
import { RingHashStrategy } from './strategies/ring-hash.js';
import { MaglevStrategy } from './strategies/maglev.js';
import { WeightedLeastLoadStrategy } from './strategies/weighted-least-load.js';

const BUILT_IN: ReadonlyMap<string, StrategyFactory> = new Map<string, StrategyFactory>([
  ['round_robin', RoundRobinStrategy],
  ['random', RandomStrategy],
  ['weighted_round_robin', WeightedRoundRobinStrategy],
  ['least_connections', LeastConnectionsStrategy],
  ['least_request', LeastRequestStrategy],
  ['peak_ewma', PeakEwmaStrategy],
  ['response_time_weighted', ResponseTimeWeightedStrategy],
  ['ring_hash', RingHashStrategy],
  ['maglev', MaglevStrategy],
  ['weighted_least_load', WeightedLeastLoadStrategy],
]);

const registered = new Map<string, StrategyFactory>();
const NAME_RE = /^[a-z][a-z0-9_]*$/;

/**
 * Makes a strategy selectable by name in every balancer of this process (moleculer's `Strategies.register`).
 * Built-in names cannot be replaced; registering the same name again replaces the earlier user registration.
 */
export function registerStrategy(name: string, factory: StrategyFactory): void {
  assertString('name', name, { maxLength: 64, pattern: NAME_RE });
  if (BUILT_IN.has(name)) throw new InvalidArgumentError(`name must not be a built-in strategy name, got "${name}"`);
  if (typeof factory !== 'function') {
    throw new InvalidArgumentError(`factory must be a strategy class or function, got ${describeValue(factory)}`);
  }
  registered.set(name, factory);
}

/** Every name `strategy` accepts: built-in first, then registered. */
export function strategyNames(): string[] {
  return [...BUILT_IN.keys(), ...registered.keys()];
}

/** Looks a strategy factory up by name, or undefined. */
export function getStrategyFactory(name: string): StrategyFactory | undefined {
  return BUILT_IN.get(name) ?? registered.get(name);
}

function isStrategyObject(value: unknown): value is Strategy {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Strategy).pick === 'function' &&
    typeof (value as Strategy).update === 'function'
  );
}

/** Calls a factory: classes (their prototype has `pick`) with `new`, plain functions directly. */
export function instantiateStrategy(factory: StrategyFactory, options: StrategyOptions, env: StrategyEnv): Strategy {
  const proto = (factory as { prototype?: { pick?: unknown } }).prototype;
  const strategy =
    proto !== undefined && typeof proto.pick === 'function'
      ? new (factory as StrategyClass)(options, env)
      : (factory as StrategyFunction)(options, env);
  if (!isStrategyObject(strategy)) {
    throw new InvalidArgumentError(
      `strategy factory must return an object with pick() and update(), got ${describeValue(strategy)}`,
    );
  }
  return strategy;
}

/** The factory behind a `strategy` option given by name or as a class/function; undefined for an object. */
export function resolveStrategyFactory(spec: unknown): StrategyFactory | undefined {
  if (typeof spec === 'string') {
    const factory = getStrategyFactory(spec);
    if (factory === undefined) {
      throw new InvalidArgumentError(
        `strategy must be one of ${strategyNames()
          .map((n) => JSON.stringify(n))
          .join(', ')}, got ${describeValue(spec)}`,
      );
    }
    return factory;
  }
  if (typeof spec === 'function') return spec as StrategyFactory;
  if (isStrategyObject(spec)) return undefined;
  throw new InvalidArgumentError(
    `strategy must be a strategy name, class, factory function or object, got ${describeValue(spec)}`,
  );
}

/** Creates the strategy for a `strategy` option: a name, a class, a factory function, or a ready object. */
export function createStrategy(spec: unknown, options: StrategyOptions, env: StrategyEnv): Strategy {
  const factory = resolveStrategyFactory(spec);
  if (factory === undefined) return spec as Strategy;
  return instantiateStrategy(factory, options, env);
}
