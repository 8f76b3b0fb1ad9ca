export const LABEL = {
  managed: 'ozwald.managed',
  provisioner: 'ozwald.provisioner',
  realm: 'ozwald.realm',
  instance: 'ozwald.instance',
  service: 'ozwald.service',
  profile: 'ozwald.profile',
  variety: 'ozwald.variety',
  specHash: 'ozwald.spec-hash',
  specDigest: 'ozwald.spec-digest',
  secrets: 'ozwald.secrets',
} as const;

export const containerName = (realm: string, instance: string) => `ozsvc--${realm}--${instance}`;
