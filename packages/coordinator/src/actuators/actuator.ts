import type { Disposable } from '@shoal/core';

/** One replica an actuator manages, as far as it knows it. */
export interface ReplicaInfo {
  /** The instance id the replica reports with (`SHOAL_INSTANCE_ID` for local replicas, the pod name on Kubernetes). */
  readonly id: string;
  readonly state: 'starting' | 'running' | 'stopping' | 'restarting';
  /** Local replicas: the pid of the replica's guard (also the process group of guard and replica). */
  readonly pid?: number;
  /** Local replicas: the replica process itself. */
  readonly replicaPid?: number;
  /** Local replicas: taken over from the coordinator that ran before this one. */
  readonly adopted?: boolean;
  readonly address?: string;
  readonly port?: number;
  readonly restarts?: number;
  readonly startedAtMs?: number;
  /** What the replica runs, as a short hash of its actuator config (local replicas; see rollouts). */
  readonly version?: string;
}

export interface ScaleOptions {
  /**
   * Instance ids to remove first when scaling down (the policy's choice). They have already been drained by the
   * coordinator; the actuator removes them (local: SIGTERM, then SIGKILL after a deadline; Kubernetes: lowest
   * pod-deletion-cost).
   */
  victims?: readonly string[];
}

/** What `Actuator.selectVictims` answers. */
export interface SelectedVictims {
  /** The victims to drain and remove first. */
  readonly victims: readonly string[];
  /** Why the others are held, for the decision log (empty when none is). */
  readonly reasons: readonly string[];
}

/**
 * What the control loop drives. Every actuator turns "this service should have N replicas" into action; they
 * differ in how they learn the current count and which replica goes on scale-down.
 */
export interface Actuator {
  readonly type: 'local' | 'kubernetes' | 'command' | (string & {});
  /** The current replica count (as the platform sees it). */
  getReplicas(): Promise<number>;
  /** Moves to `replicas`, removing `victims` first when scaling down. Resolves once the platform accepted it. */
  scaleTo(replicas: number, options?: ScaleOptions): Promise<void>;
  /** Calls `listener` with the replica count whenever the actuator sees it change. */
  watch(listener: (replicas: number) => void): Disposable;
  /**
   * For actuators that cannot read the platform's count (command, webhook): adopt the count a previous leader
   * persisted, so a new leader starts from what was last set rather than from minReplicas.
   */
  assumeReplicas?(replicas: number): void;
  /**
   * Of the policy's victims, the ones this actuator removes first now, and why the others are held (Kubernetes:
   * pods listed under the target's selector, none while it rolls out). The control loop drains and passes only
   * these; without this method every victim is. Ids reach actuators only after the protocol's instance grammar.
   */
  selectVictims?(ids: readonly string[]): Promise<SelectedVictims>;
  /** Replicas the actuator knows individually (local supervisor only; others return []). */
  replicas(): readonly ReplicaInfo[];
  close(): Promise<void>;
}
