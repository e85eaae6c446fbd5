// What a rollout is asked to do and how it will finish: the change, the prepared node, the names
// a run gives its containers, and the one choice of a single node's finish (rename, swap or a
// second handoff), which the plan's text and the rollout both read.
import { describePorts, publishedPorts } from '../container-spec.js'
import type { ContainerInfo } from '../docker.js'
import type { NodeLink, Timeouts } from '../handoff-types.js'
import type { NodeContainer, NodeView } from '../node.js'

export const SUFFIX_NEXT = '-rollout-next'
export const SUFFIX_PREVIOUS = '-rollout-previous'

/** What is being rolled out: a new image (upgrade) or the same one (handoff, restart). */
export interface Change {
  operation: 'upgrade' | 'handoff' | 'restart'
  /** reference to create containers from */
  createRef: string
  /** digest-qualified, for outputs */
  display: string
  /** take the pre-upgrade backup (upgrade only) */
  backup: boolean
}

/** The node as preflight proved it (withNode), handed to a rollout. */
export interface Prepared {
  view: NodeView
  leader: NodeContainer
  /** the pair's other container, proven waiting for the lock */
  other?: NodeContainer
  link: NodeLink
  t: Timeouts
}

/**
 * How a single node's rollout ends (docs/decisions.md):
 * - `rename`: the standby took over on the leader's own ports (host network, or nothing
 *   published); it is given the leader's name.
 * - `swap`: the standby proved the new image waits for the lock on spare ports, is removed, and
 *   one prepared stop -> start puts the new container on the original ports (the default).
 * - `second-handoff`: a second handoff from the standby on spare ports to a new container on
 *   the original ports.
 */
export type Finish = 'rename' | 'swap' | 'second-handoff'

/** The finish for a leader: its published ports decide whether the standby can keep the place. */
export function finishOf(leader: ContainerInfo, asked: 'swap' | 'second-handoff'): Finish {
  const published = leader.HostConfig.NetworkMode !== 'host' && Object.keys(publishedPorts(leader)).length > 0
  return published ? asked : 'rename'
}

/** The plan in one sentence, for the report and a dry run. */
export function planText(p: Prepared, ch: Change, preferPrimary: boolean, asked: 'swap' | 'second-handoff'): string {
  const { leader, other } = p
  if (other) {
    const steps =
      ch.operation === 'handoff'
        ? [`hand off from '${leader.name}' to the waiting '${other.name}'`, `restart '${leader.name}' as the standby`]
        : [
            `recreate the waiting '${other.name}' on ${ch.createRef}`,
            `hand off to it`,
            `recreate '${leader.name}' on ${ch.createRef} as the standby`
          ]
    if (preferPrimary && leader.name === p.view.containers[0].name) steps.push(`hand back to '${leader.name}'`)
    return steps.join(', then ')
  }
  const next = `'${leader.name}${SUFFIX_NEXT}'`
  switch (finishOf(leader.info, asked)) {
    case 'swap':
      return `verify ${ch.createRef} as a waiting standby ${next} on spare ports, remove it, then stop '${leader.name}' and start the new container in its place on the original ports (${describePorts(leader.info)})`
    case 'second-handoff':
      return `start ${next} on ${ch.createRef} with ports remapped, hand off to it, then start '${leader.name}' on the original ports (${describePorts(leader.info)}) and hand off again`
    case 'rename':
      return `start ${next} on ${ch.createRef} (${describePorts(leader.info)}), hand off to it, then give it the name '${leader.name}'`
  }
}
