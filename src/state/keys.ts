// Redis key layout. The vault:* and unlock:* names are a contract shared with
// other tools; everything else lives under ozwald:<provisioner>:.
export const vaultKey = (realm: string, locker: string) => `vault:${realm}:${locker}`;
export const unlockKey = (realm: string, locker: string) => `unlock:${realm}:${locker}`;

export const keys = (provisioner: string) => ({
  /** HASH realm/instance → JSON status record. */
  status: `ozwald:${provisioner}:status`,
  /** STRING JSON: the controller's own health (manifests, connectivity). */
  controller: `ozwald:${provisioner}:controller`,
  /** STRING JSON: the dynamic desired set {generation, services[]}. */
  desired: `ozwald:${provisioner}:desired`,
  /** STRING with TTL: who runs this provisioner now (see state/lease.ts). */
  lease: `ozwald:${provisioner}:lease`,
  /** Pub/sub channel: anything that changes desired state or delivers a token publishes here. */
  wake: `ozwald:${provisioner}:wake`,
});

export const UNLOCK_TTL_DEFAULT = 60;
export const UNLOCK_TTL_MAX = 3600;
