import type { Context, OperationResult } from '../context.js'
import { status } from './status.js'
import { upgrade } from './upgrade.js'
import { repair } from './repair.js'
import { handoffOrRestart } from './handoff.js'

export async function runOperation(ctx: Context): Promise<OperationResult> {
  switch (ctx.inputs.operation) {
    case 'status':
      return status(ctx)
    case 'upgrade':
      return upgrade(ctx)
    case 'handoff':
    case 'restart':
      return handoffOrRestart(ctx)
    case 'repair':
      return repair(ctx)
    default:
      throw new Error(`operation '${ctx.inputs.operation}' is not available in this build`)
  }
}
