// One base for every error meant for the operator: a plain sentence, printed as it is, no stack.
// Anything else that reaches the edge is a defect and has its stack logged for debugging.

export class ActionError extends Error {
  constructor(
    message: string,
    /** the action input at fault, when one is */
    readonly input?: string
  ) {
    super(message)
    this.name = new.target.name
  }
}

/** An operation could not do what it was asked; the node is left consistent. */
export class OperationError extends ActionError {}

/** The job was cancelled (SIGINT/SIGTERM) while the operation waited. */
export class AbortedError extends ActionError {
  constructor() {
    super('cancelled')
  }
}
