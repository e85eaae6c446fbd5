import type { Context, OperationResult } from '../context.js'
import { status } from './status.js'
import { upgrade } from './upgrade.js'
import { repair } from './repair.js'
import { handoffOrRestart } from './handoff.js'
import { backup, restore } from './backup.js'

export async function runOperation(ctx: Context): Promise<OperationResult> {
  switch (ctx.inputs.operation) {
    case 'status':
      return status(ctx)
    case 'upgrade':
      return upgrade(ctx)
    case 'handoff':
    case 'restart':
      return handoffOrRestart(ctx)
    case 'backup':
      return backup(ctx)
    case 'restore':
      return restore(ctx)
    case 'repair':
      return repair(ctx)
  }
}
