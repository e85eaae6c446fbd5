// Preflight on the engine behind the Docker API: named in the summary, and a Podman that
// cannot do what the run needs, or a container Podman's pods or systemd units own, refused
// before anything changes (docs/podman.md).
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import { containerName } from '../docker/client.js'
import {
  describeEngine,
  engineRefusals,
  LABEL_PODMAN_SYSTEMD_UNIT,
  type Engine,
  type PodmanFacts
} from '../docker/engine.js'

/** Names the engine in the summary; refuses what it cannot roll (names: the node's containers). */
export async function checkEngine(ctx: Context, names: string[]): Promise<Engine | undefined> {
  const { docker, report } = ctx
  if (!docker.engine) return undefined
  const engine = await docker.engine()
  report.fact('Engine', describeEngine(engine))
  if (!engine.podman) return engine
  const facts: PodmanFacts[] = []
  for (const n of names) {
    const info = await docker.inspect(n)
    if (!info) continue
    facts.push({
      name: containerName(info),
      pod: await docker.podOf?.(info.Id),
      systemdUnit: info.Config.Labels?.[LABEL_PODMAN_SYSTEMD_UNIT] || undefined,
      restartPolicy: info.HostConfig.RestartPolicy?.Name || undefined
    })
  }
  const refusals = engineRefusals(engine, facts)
  if (refusals.length) throw new OperationError(refusals.join('; '))
  return engine
}
