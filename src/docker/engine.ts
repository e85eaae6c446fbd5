// Which engine answers the Docker API: Docker Engine, or Podman's Docker-compatible service
// (`podman system service`), and what the action may not ask of it. Decisions on plain values
// (docs/podman.md); the client reads /version and Podman's own inspect.

/** What GET /version answers (Docker and Podman alike; Podman lists a "Podman Engine" component). */
interface VersionAnswer {
  Version?: string
  ApiVersion?: string
  Components?: Array<{ Name?: string; Version?: string }> | null
}

export interface Engine {
  /** "Docker Engine" or "Podman Engine" (the component's own name) */
  name: string
  version: string
  apiVersion: string
  podman: boolean
  /**
   * POST /containers/{id}/update with a RestartPolicy: Docker has it; Podman only from 5.0
   * (docs/podman.md: 4.x answers 404, so `docker update --restart` cannot be done)
   */
  restartPolicyUpdate: boolean
}

export function engineOf(v: VersionAnswer): Engine {
  const podman = (v.Components ?? []).find((c) => /^podman engine$/i.test(c.Name ?? ''))
  const version = podman?.Version ?? v.Version ?? '?'
  const major = Number(/^(\d+)\./.exec(version)?.[1] ?? NaN)
  return {
    name: podman ? 'Podman Engine' : 'Docker Engine',
    version,
    apiVersion: v.ApiVersion ?? '?',
    podman: !!podman,
    // an unreadable Podman version is treated as the old one: refuse up front rather than fail mid-handoff
    restartPolicyUpdate: !podman || major >= 5
  }
}

/** One line for the summary: `Podman Engine 4.3.1 (Docker API 1.41)`. */
export function describeEngine(e: Engine): string {
  return `${e.name} ${e.version} (Docker API ${e.apiVersion})`
}

/** What Podman says of a container the action would stop, replace or clone. */
export interface PodmanFacts {
  name: string
  /** the pod it runs in (name, else id); undefined outside a pod */
  pod?: string
  /** label PODMAN_SYSTEMD_UNIT: a systemd unit (podman generate systemd, Quadlet) owns it */
  systemdUnit?: string
  /** HostConfig.RestartPolicy.Name ('' or 'no' when none) */
  restartPolicy?: string
}

/** The label Podman puts on a container a systemd unit runs (podman-auto-update(1)). */
export const LABEL_PODMAN_SYSTEMD_UNIT = 'PODMAN_SYSTEMD_UNIT'

/**
 * Why the action must not touch these containers on this engine, one message per cause (empty:
 * go ahead). Everything here is decided before anything changes: a Podman that cannot do a step
 * is refused in preflight, never found out mid-handoff.
 */
export function engineRefusals(e: Engine, containers: PodmanFacts[]): string[] {
  if (!e.podman) return []
  const out: string[] = []
  for (const c of containers) {
    if (c.pod)
      out.push(
        `'${c.name}' runs in Podman pod '${c.pod}': it shares the pod's network, ports and IPC, and a container made through the Docker API cannot join the pod, so its standby would be another node on another network. Run the node outside a pod to roll it with chainlink-rollout`
      )
    if (c.systemdUnit)
      out.push(
        `'${c.name}' is run by systemd unit '${c.systemdUnit}' (label ${LABEL_PODMAN_SYSTEMD_UNIT}): the unit recreates it from its own image on its next restart and removes whatever replaced it. Change the unit's image (Image= or podman auto-update) instead, or run the node without the unit`
      )
  }
  if (!e.restartPolicyUpdate) {
    const restarting = containers.filter((c) => c.restartPolicy && c.restartPolicy !== 'no')
    for (const c of restarting)
      out.push(
        `'${c.name}' has restart policy '${c.restartPolicy}' and ${describeEngine(e)} cannot change a container's restart policy (no POST /containers/{id}/update before Podman 5): the old container must be set to 'no' while it is the stopped rollback copy, or a reboot (podman-restart.service) starts an old binary on a migrated DB. Recreate '${c.name}' with --restart=no, or move to Podman 5 or later`
      )
  }
  return out
}

// ------------------------------------------------------------------ reads

interface Modem {
  dial(
    o: { path: string; method: string; statusCodes: Record<number, boolean | string> },
    cb: (err: Error | null, data: unknown) => void
  ): void
}

/** GET on Podman's own API (/libpod/...), which says what the Docker-compatible answers leave out. */
function libpod<T>(api: { modem: unknown }, path: string): Promise<T> {
  return new Promise((resolve, reject) =>
    (api.modem as Modem).dial(
      { path: `/v4.0.0/libpod${path}`, method: 'GET', statusCodes: { 200: true, 404: 'not found' } },
      (err, data) => (err ? reject(err) : resolve(data as T))
    )
  )
}

/** The engine behind the API (GET /version). */
export async function readEngine(api: { version(): Promise<unknown> }): Promise<Engine> {
  return engineOf((await api.version()) as VersionAnswer)
}

/** The Podman pod a container runs in, by name (else id); undefined outside a pod. Podman only. */
export async function readPod(api: { modem: unknown }, id: string): Promise<string | undefined> {
  const c = await libpod<{ Pod?: string }>(api, `/containers/${encodeURIComponent(id)}/json`)
  if (!c.Pod) return undefined
  const pod = await libpod<{ Name?: string }>(api, `/pods/${encodeURIComponent(c.Pod)}/json`).catch(() => undefined)
  return pod?.Name || c.Pod.slice(0, 12)
}
