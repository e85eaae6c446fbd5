// The one logger shape of the action, the CLI and the backup library: the runner's log at the
// edge (action.ts), stderr in the CLI, a collecting one in tests.
export interface Log {
  info(message: string): void
  warning(message: string): void
  debug(message: string): void
  /** registers a secret with the runner so it is masked in everything printed after */
  mask(secret: string): void
}
