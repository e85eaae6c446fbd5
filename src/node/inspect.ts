// Finds the node: its container(s), its settings, its database and which container leads.
// Everything here only reads; it is the preflight of every operation.
import type { Context } from '../context.js'
import { OperationError } from '../errors.js'
import type { DbApi, NodeSession } from '../postgres/database.js'
import { anyDigest, containerIps, containerName, type ContainerInfo, type DockerApi } from '../docker/client.js'
import { readLockState, sameApp } from './lock.js'
import { connectNode, maskNodeSecrets, type DbSettings } from './connect.js'
import { dbClockAheadMs, sessionContainerOf } from './session-container.js'
import { appsOf, describeApps, tieApps, type App, type SessionContainer, type Tie } from './sessions.js'
import { describeReady, isAuthStatus, probe } from './health.js'
import type { Candidate, NodeContainer, NodeView } from './view.js'
import { hasPlaceholder, healthBase, networkView } from './health-url.js'

export function asCandidate(info: ContainerInfo): Candidate {
  return { name: containerName(info), id: info.Id, running: info.State.Running, ips: containerIps(info) }
}

async function requireContainer(docker: DockerApi, name: string, input: string): Promise<ContainerInfo> {
  const info = await docker.inspect(name)
  if (!info) throw new OperationError(`Input '${input}': no container named '${name}' on this Docker host`)
  return info
}

/** Lines of the container's own log that may name its app id: the boot line, recent lines. */
async function logOf(ctx: Context, info: ContainerInfo): Promise<string> {
  return ctx.docker.logs(info.Id, 2000)
}

/**
 * Which container each node process on the DB belongs to (src/node/sessions.ts): by app id, by
 * when it connected against when the container started, and by the container's log naming its
 * app id; the client address is only a hint.
 */
export async function tieSessions(
  ctx: Context,
  db: DbApi,
  infos: ContainerInfo[],
  sessions: NodeSession[]
): Promise<{ apps: App[]; ties: Tie[]; containers: SessionContainer[] }> {
  const containers = infos.map(sessionContainerOf)
  const apps = appsOf(sessions, dbClockAheadMs(db) ?? 0)
  const logs = new Map<string, string>()
  for (const i of infos) if (i.State.Running && apps.length) logs.set(i.Id, await logOf(ctx, i))
  const ties = tieApps(containers, apps, { logNames: (id, appId) => !!logs.get(id)?.includes(appId) })
  return { apps, ties, containers }
}

/**
 * The node's containers (`names`: the leader or primary first), its DB (`settings`) and lock,
 * and each container's health base URL (input 'health-url' when given, else its address).
 */
export async function inspectNode(
  ctx: Context,
  names: string[],
  settings: DbSettings & { healthUrl?: string }
): Promise<NodeView> {
  const { docker, log } = ctx
  const infos: ContainerInfo[] = []
  for (const [i, n] of names.entries()) {
    const info = await requireContainer(docker, n, i === 0 ? 'container' : 'standby')
    await maskNodeSecrets(docker, info, log.mask)
    infos.push(info)
  }
  const { config, databaseUrl, db, mode } = await connectNode(ctx, infos[0], settings)
  try {
    const lock = await readLockState(db, mode, config.advisoryLockId)
    const dbVersion = await db.version()
    const containers: NodeContainer[] = []
    for (const info of infos) {
      const img = await docker.imageInfo(info.Image)
      containers.push({
        info,
        name: containerName(info),
        image: info.Config.Image,
        digest: img ? anyDigest(img) : undefined,
        candidate: asCandidate(info)
      })
    }
    const { apps, ties } = await tieSessions(ctx, db, infos, lock.sessions)
    for (const c of containers) {
      const app = apps.find((a) => ties.find((t) => t.appId === a.appId)?.container === c.info.Id)
      // The lock connection is one of several sessions per node; keep the lock holder's.
      c.session = app && (app.sessions.find((s) => sameApp(s.appId, lock.holder)) ?? app.sessions[0])
    }
    for (const c of containers) {
      c.healthUrl = healthBase(await networkView(docker, c.info), config.httpPort, settings.healthUrl)
      if (c.info.State.Running && c.healthUrl) c.health = await probe(c.healthUrl)
    }
    const leader = lock.holder ? containers.find((c) => sameApp(c.session?.appId, lock.holder)) : undefined
    return {
      config,
      mode,
      databaseUrl,
      db,
      lock,
      dbVersion,
      containers,
      leader,
      version: leader?.session?.version ?? lock.sessions[0]?.version,
      apps,
      ties
    }
  } catch (e) {
    await db.close()
    throw e
  }
}

/** Fails preflight unless exactly one of the given containers is the proven leader. */
export function requireLeader(view: NodeView, expected?: string): NodeContainer {
  if (view.lock.problem) throw new OperationError(`No single leader: ${view.lock.problem}`)
  // instances joined to one port holder answer at one URL (whichever leads): one answer there
  const ready = view.containers.filter(
    (c, i, all) => c.health?.readyz === 200 && all.findIndex((o) => o.healthUrl === c.healthUrl) === i
  )
  if (ready.length > 1)
    throw new OperationError(
      `Two leaders: ${ready.map((c) => `${c.name} (${describeReady(c.health!)})`).join(' and ')} both answer ready`
    )
  if (!view.leader) {
    const holder = view.ties.find((t) => sameApp(t.appId, view.lock.holder))
    const seen = describeApps(
      view.apps,
      view.ties,
      view.containers.map((c) => sessionContainerOf(c.info))
    )
    if (holder?.possible.length)
      throw new OperationError(
        `Cannot prove which container holds the lock: it is held by app ${view.lock.holder}, which ${holder.why}. Nothing was changed. Seen: ${seen}`
      )
    throw new OperationError(
      `The lock is held by app ${view.lock.holder}, which is none of the containers ${view.containers.map((c) => `'${c.name}'`).join(', ')}: another node on this database leads. Seen: ${seen}`
    )
  }
  if (expected && view.leader.name !== expected)
    throw new OperationError(`Container '${expected}' is not the leader: '${view.leader.name}' holds the lock`)
  return view.leader
}

/**
 * The gates judge every container by its health URL: prove the form on the leader before
 * anything changes (a TLS redirect, ListenIP 127.0.0.1, macvlan or a runner in a container
 * break a derived container-IP URL). Uses the one probe preflight already made.
 */
export function requireHealthUrl(view: NodeView, leader: NodeContainer, form: string | undefined): void {
  const example = view.containers.some((c) => Object.keys(c.info.HostConfig.PortBindings ?? {}).length)
    ? 'http://127.0.0.1:{port}'
    : 'http://{address}:6688'
  const how = `set input 'health-url' to a form that reaches every container of the node from this runner, e.g. ${example} ({address}, {port} and {name} are filled in per container)`
  if (form && !hasPlaceholder(form)) {
    const notHost = view.containers.filter((c) => c.info.HostConfig.NetworkMode !== 'host')
    if (notHost.length)
      throw new OperationError(
        `Input 'health-url': ${form} names one address, but '${notHost[0].name}' is not on host networking, so the rollout's containers answer at different addresses; ${how}`
      )
  }
  const url = leader.healthUrl
  const what = form ? `input 'health-url' (${form})` : `the derived health URL (no 'health-url' given)`
  if (!url) throw new OperationError(`Cannot reach '${leader.name}' over HTTP: ${what} gives no address for it; ${how}`)
  const p = leader.health
  if (p?.readyz === 200) return
  const route = p?.readyRoute ?? '/readyz'
  const got =
    p?.readyz !== undefined
      ? `answered ${p.readyz}${isAuthStatus(p.readyz) ? ' (behind authentication, as every readiness route of it: the gates cannot see it turn ready)' : ''}`
      : `did not answer (${p?.error ?? 'no request made'})`
  throw new OperationError(
    `Input 'health-url': ${url}${route} of the leader '${leader.name}' ${got}; the gates would judge every container there, so nothing was changed. The URL is ${what}; ${how}`
  )
}
