// One update path: whatever else on the host would change the node behind the action's back
// (Watchtower, Podman's auto-update, an autoheal watchdog, a compose project) is found before
// anything changes, and refused or warned about by name (docs/other-updaters.md). The decision is
// a pure function of plain values (otherUpdaters); the Docker listing is findUpdaters.
import type { ContainerInfo, DockerApi } from '../docker/client.js'

/** A running container that updates or restarts other containers. */
export interface Updater {
  kind: 'watchtower' | 'autoheal'
  name: string
  image: string
  env: Record<string, string>
  /** the arguments after the entrypoint (Watchtower's flags and container names) */
  args: string[]
}

/** A container of the node (the leader, a pair's standby): what the updaters look at. */
export interface NodeFacts {
  name: string
  labels: Record<string, string>
  /** a healthcheck that can turn the container unhealthy (not NONE) */
  healthcheck: boolean
}

interface Finding {
  /** what does it, for the summary: "Watchtower 'wt' (containrrr/watchtower)" */
  who: string
  /** refuse: it would replace or restart the node on its own schedule, also mid-handoff */
  severity: 'refuse' | 'warn'
  message: string
}

const WT = 'com.centurylinklabs.watchtower'
const AUTOUPDATE = 'io.containers.autoupdate'
const COMPOSE_PROJECT = 'com.docker.compose.project'
const COMPOSE_FILES = 'com.docker.compose.project.config_files'

const isTrue = (v: string | undefined) => v !== undefined && /^(true|1|yes|on)$/i.test(v.trim())
const isFalse = (v: string | undefined) => v !== undefined && /^(false|0|no|off)$/i.test(v.trim())

/** Watchtower's flags that take a value: what follows them is not a container name. */
const WT_VALUE_FLAGS = new Set([
  '-H',
  '--host',
  '-i',
  '--interval',
  '-s',
  '--schedule',
  '--stop-timeout',
  '-x',
  '--disable-containers',
  '--scope',
  '--http-api-token',
  '-n',
  '--notifications',
  '--notifications-level',
  '--notifications-hostname',
  '--notifications-delay',
  '--warn-on-head-failure',
  '-P',
  '--porcelain',
  '-l',
  '--log-format',
  '--log-level'
])
/** `--notification-*` flags take a value, except these switches. */
const WT_NOTIFICATION_SWITCHES = new Set([
  '--notification-report',
  '--notification-log-stdout',
  '--notification-skip-title',
  '--notification-email-server-tls-skip-verify',
  '--notification-gotify-tls-skip-verify',
  '--notification-msteams-data'
])
const CONTAINER_NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

interface WatchtowerSettings {
  labelEnable: boolean
  monitorOnly: boolean
  scope?: string
  disabled: string[]
  /** names given as arguments: only these are watched (empty: every container) */
  only: string[]
}

/** Watchtower's settings from its flags and WATCHTOWER_* variables (flags win, as in its CLI). */
export function watchtowerSettings(env: Record<string, string>, args: string[]): WatchtowerSettings {
  const flags = new Map<string, string>()
  const only: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a.startsWith('-')) {
      const eq = a.indexOf('=')
      if (eq > 0) flags.set(a.slice(0, eq), a.slice(eq + 1))
      else if (WT_VALUE_FLAGS.has(a) || (a.startsWith('--notification') && !WT_NOTIFICATION_SWITCHES.has(a)))
        flags.set(a, args[++i] ?? '')
      else flags.set(a, 'true')
    } else if (CONTAINER_NAME.test(a)) only.push(a.replace(/^\//, ''))
  }
  const flag = (long: string, envName: string, short?: string) =>
    flags.get(long) ?? (short ? flags.get(short) : undefined) ?? env[envName]
  const list = (v: string | undefined) => (v ?? '').split(/[\s,]+/).filter(Boolean)
  return {
    labelEnable: isTrue(flag('--label-enable', 'WATCHTOWER_LABEL_ENABLE')),
    monitorOnly: isTrue(flag('--monitor-only', 'WATCHTOWER_MONITOR_ONLY')),
    scope: flag('--scope', 'WATCHTOWER_SCOPE') || undefined,
    disabled: list(flag('--disable-containers', 'WATCHTOWER_DISABLE_CONTAINERS', '-x')),
    only
  }
}

/** Why Watchtower leaves `node` alone, or undefined when it would update it. */
function watchtowerSkips(s: WatchtowerSettings, node: NodeFacts): string | undefined {
  const l = node.labels
  if (isFalse(l[`${WT}.enable`])) return `the node's label ${WT}.enable=false excludes it`
  if (s.labelEnable && !isTrue(l[`${WT}.enable`]))
    return `it runs with label-enable and the node has no ${WT}.enable=true`
  if (s.monitorOnly || isTrue(l[`${WT}.monitor-only`])) return 'it only notifies (monitor-only)'
  if (s.scope && l[`${WT}.scope`] !== s.scope) return `it watches scope '${s.scope}' only`
  if (s.disabled.includes(node.name)) return `it is run with --disable-containers ${node.name}`
  if (s.only.length && !s.only.includes(node.name)) return `it watches only ${s.only.join(', ')}`
  return undefined
}

/**
 * The decision: each other updater that acts on the node, refused or warned about. Refused:
 * what replaces or restarts the node on its own schedule, because it can do so in the middle of a
 * handoff (a second node on another image racing for the lock, a standby restarted while it
 * waits) and later undo what this action did without its gates or its rollback with the DB.
 * Warned: what acts only when someone runs it (compose), or cannot act as the node is now.
 * `imageChanges`: the operation moves the node to another image (upgrade); `imageFile`: the
 * absolute path of the desired-state file the image came from, if any.
 */
export function otherUpdaters(
  updaters: Updater[],
  nodes: NodeFacts[],
  opts: { imageChanges: boolean; imageFile?: string }
): Finding[] {
  const out: Finding[] = []
  const wts = updaters.filter((u) => u.kind === 'watchtower')
  for (const u of wts) {
    const s = watchtowerSettings(u.env, u.args)
    const who = `Watchtower '${u.name}' (${u.image})`
    const watched = nodes.filter((n) => !watchtowerSkips(s, n))
    if (!watched.length) continue
    out.push({
      who,
      severity: 'refuse',
      message: `${who} watches ${names(watched)}: it replaces a container by stop, remove and create on its own schedule (no lock handoff, no gates, no rollback with the DB), also in the middle of this run. Exclude the node (run it with --label-enable, or --disable-containers ${watched[0].name}, or give the node the label ${WT}.enable=false when it is next created) or stop ${u.name}`
    })
  }
  const wtLabelled = nodes.filter((n) => isTrue(n.labels[`${WT}.enable`]))
  if (!wts.length && wtLabelled.length)
    out.push({
      who: `label ${WT}.enable=true`,
      severity: 'warn',
      message: `${names(wtLabelled)} carries ${WT}.enable=true but no Watchtower runs on this Docker host: one started later, or on another host pointed at this Docker socket, would update it behind the action's back`
    })
  for (const n of nodes) {
    const v = n.labels[AUTOUPDATE]
    if (v === undefined) continue
    const acts = /^(registry|image|local)$/.test(v.trim())
    out.push({
      who: `label ${AUTOUPDATE}=${v} on '${n.name}'`,
      severity: acts ? 'refuse' : 'warn',
      message: acts
        ? `'${n.name}' carries ${AUTOUPDATE}=${v}: podman auto-update (its systemd timer) pulls and restarts it on its own schedule, rolling back the image only. Disable podman-auto-update.timer for it`
        : `'${n.name}' carries ${AUTOUPDATE}=${v}, a value podman auto-update does not act on; remove the label when the node is next created`
    })
  }
  for (const u of updaters.filter((x) => x.kind === 'autoheal')) {
    const label = (u.env.AUTOHEAL_CONTAINER_LABEL || 'autoheal').trim()
    const watched = nodes.filter((n) => label === 'all' || isTrue(n.labels[label]))
    if (!watched.length) continue
    const who = `autoheal '${u.name}' (${u.image})`
    const why = label === 'all' ? 'AUTOHEAL_CONTAINER_LABEL=all' : `the label ${label}=true`
    const checked = watched.filter((n) => n.healthcheck)
    out.push(
      checked.length
        ? {
            who,
            severity: 'refuse',
            message: `${who} restarts ${names(checked)} when unhealthy (${why}): a standby waiting for the lock and a new node migrating answer no health check, so it would restart them mid-handoff. Exclude the node (AUTOHEAL_CONTAINER_LABEL other than all, no ${label}=true label) or stop ${u.name}`
          }
        : {
            who,
            severity: 'warn',
            message: `${who} watches ${names(watched)} (${why}), which has no healthcheck, so it cannot act now; with a healthcheck it would restart a standby waiting for the lock`
          }
    )
  }
  if (opts.imageChanges) {
    for (const n of nodes) {
      const project = n.labels[COMPOSE_PROJECT]
      if (!project) continue
      const files = (n.labels[COMPOSE_FILES] ?? '').split(',').filter(Boolean)
      if (opts.imageFile && files.includes(opts.imageFile)) continue
      out.push({
        who: `compose project '${project}'`,
        severity: 'warn',
        message: `'${n.name}' belongs to compose project '${project}'${files.length ? ` (${files.join(', ')})` : ''}: update the service's image in that file too (or point image-file at it). A docker compose up after the file changes recreates the node from the file (a restart without the lock handoff; back to the old image while the file still names it). docs/compose.md`
      })
    }
  }
  return out
}

/** The refusal for the findings, or undefined to go on (every finding is then a warning). */
export function updatersRefusal(findings: Finding[], allow: boolean): string | undefined {
  const refused = findings.filter((f) => f.severity === 'refuse')
  if (!refused.length || allow) return undefined
  return `Another updater would change the node behind the action's back: ${refused.map((f) => f.message).join('; ')}. Or set allow-other-updaters: true to go on anyway (docs/other-updaters.md)`
}

const names = (ns: NodeFacts[]) => ns.map((n) => `'${n.name}'`).join(' and ')

/** The node container's facts for otherUpdaters. */
export function nodeFacts(info: ContainerInfo): NodeFacts {
  const test = info.Config.Healthcheck?.Test ?? []
  return {
    name: info.Name.replace(/^\//, ''),
    labels: info.Config.Labels ?? {},
    healthcheck: test.length > 0 && test[0] !== 'NONE'
  }
}

/** Watchtower and autoheal containers running on the Docker host, by image name or Watchtower's own label. */
export async function findUpdaters(docker: DockerApi, exclude: string[]): Promise<Updater[]> {
  const out: Updater[] = []
  for (const c of await docker.listRunning()) {
    if (exclude.includes(c.Id)) continue
    const image = c.Image.toLowerCase()
    const kind =
      image.includes('watchtower') || isTrue(c.Labels?.[WT])
        ? 'watchtower'
        : image.includes('autoheal')
          ? 'autoheal'
          : undefined
    if (!kind) continue
    const info = await docker.inspect(c.Id)
    if (!info) continue
    const env: Record<string, string> = {}
    for (const e of info.Config.Env ?? []) {
      const i = e.indexOf('=')
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1)
    }
    out.push({
      kind,
      name: info.Name.replace(/^\//, ''),
      image: info.Config.Image || c.Image,
      env,
      args: info.Args ?? []
    })
  }
  return out
}
