// The node's settings the action relies on, as src/node/config.ts reads them from its container,
// and the lock it takes (docs/node-facts.md §1, §8).

export type LockMode = 'lease' | 'advisorylock' | 'dual' | 'none'

export interface NodeConfig {
  databaseUrl?: string
  /** where the DB URL came from, for the report (never the URL itself) */
  databaseUrlSource?: string
  /** lock mode as configured; undefined when the node's default applies (depends on its version) */
  lockMode?: LockMode
  lockModeSource: string
  leaseDurationMs: number
  leaseRefreshMs: number
  advisoryLockId: bigint
  advisoryCheckMs: number
  httpPort: number
  shutdownGraceMs: number
  /** v2 TOML config in use (v2 nodes only support lease) */
  toml: boolean
  configFiles: string[]
  secretsFiles: string[]
  /** the API credentials and password files of `node start` (-a, -p, --vrfpassword) */
  credentialFiles?: string[]
}
