export type Phase = 'Pending' | 'Locked' | 'Starting' | 'Running' | 'BackOff' | 'Failed' | 'Stopping';

export interface InstanceStatus {
  realm: string;
  instance: string;
  service: string;
  variety: string | null;
  profile: string | null;
  source: 'manifest' | 'dynamic';
  phase: Phase;
  /** A short CamelCase word, stable for scripts (WaitingForUnlock, WrongToken, …). */
  reason: string;
  message: string;
  /** Lockers the instance still waits for. */
  lockers: string[];
  containerId: string | null;
  specHash: string;
  /** ISO time of the last phase/reason change. */
  since: string;
}

export interface ControllerStatus {
  provisioner: string;
  pid: number;
  heartbeat: string;
  /** The resync period: a heartbeat older than a few of these means the controller is gone. */
  resyncMs?: number;
  /** The controller process holding this provisioner's lease. */
  holder?: string;
  /** Set when the controller stopped cleanly. */
  stopped?: boolean;
  manifests: { path: string; ok: boolean; loadedAt: string | null; errors: string[] };
  docker: { ok: boolean; error?: string };
}
