// The action's entry, and where it is put together: the runner's edge (action.ts) runs the main
// or the post step, each handed the operations (one module each, src/operations/).
import './cjs-shim.js'
import { run } from './edge/action.js'
import type { Operations } from './context.js'
import { main } from './edge/main.js'
import { backup, restore } from './operations/backup.js'
import { handoffOrRestart } from './operations/handoff.js'
import { repair } from './operations/repair.js'
import { drain, drainRefusal, handOff } from './operations/drain.js'
import { upgradeAcrossHosts } from './operations/upgrade-hosts.js'
import { resume } from './operations/resume.js'
import { status } from './operations/status.js'
import { upgrade } from './operations/upgrade.js'
import { post } from './edge/post.js'

const operations: Operations = {
  // a node on several hosts: this host's part of a rolling upgrade, wired here (the drain it uses
  // sits deep: docs/hosts.md)
  upgrade: (ctx, inputs) =>
    upgrade(ctx, inputs, (c, i, ref, d) => upgradeAcrossHosts(c, i, ref, { ...d, handOff, drainRefusal })),
  handoff: handoffOrRestart,
  restart: handoffOrRestart,
  status,
  backup,
  restore,
  repair,
  drain,
  resume
}

await run(
  () => main(operations),
  () => post(repair)
)
