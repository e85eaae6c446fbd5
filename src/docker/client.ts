// The Docker Engine, through its API (dockerode). Everything the operations need from Docker is
// here, as small methods on plain values, so the orchestration can be read without the API.
import Docker from 'dockerode'
import { dockerFor } from './host.js'
import { DaemonWait, type DaemonWaitOptions } from './daemon-wait.js'
import { demux, registryAuth, untarFirstFile } from './wire.js'
import { readEngine, readPod, type Engine } from './engine.js'
import { normaliseRepository, repository, repoTag, type ImageRef } from '../image/ref.js'

export type ContainerInfo = Docker.ContainerInspectInfo
import { bounded } from './wire.js'
export { bounded, demux, untarFirstFile } from './wire.js'
export { containerIps, containerName, envMap, freePort, joinedTo } from './info.js'
export type { DaemonWaitOptions } from './daemon-wait.js'

export interface ImageInfo {
  id: string
  repoDigests: string[]
  config: Docker.ImageInspectInfo['Config']
}

/**
 * What the action asks of Docker, in front of the Engine API as actions/checkout puts
 * IGitCommandManager in front of git: DockerClient is the real one; unit tests give fakes that
 * record what was done to which container.
 */
export interface DockerApi {
  ping(): Promise<void>
  /** which engine answers, Docker or Podman (src/docker/engine.ts); fakes may leave it out (Docker) */
  engine?(): Promise<Engine>
  /** the Podman pod a container runs in; undefined outside one (ask only a Podman engine) */
  podOf?(id: string): Promise<string | undefined>
  /** how many calls so far met the daemon out of reach (a daemon restart); fakes may leave it out */
  daemonFaults?(): number
  /** a container by name or id; undefined when there is none */
  inspect(nameOrId: string): Promise<ContainerInfo | undefined>
  listByLabel(label: string): Promise<Docker.ContainerInfo[]>
  /** the running containers */
  listRunning(): Promise<Docker.ContainerInfo[]>
  imageInfo(ref: string): Promise<ImageInfo | undefined>
  pull(ref: ImageRef, signal?: AbortSignal, stallMs?: number): Promise<void>
  /** creates a container; its id */
  create(spec: Docker.ContainerCreateOptions): Promise<string>
  start(id: string): Promise<void>
  stop(id: string, timeoutS: number): Promise<void>
  restart(id: string, timeoutS: number): Promise<void>
  signal(id: string, signal: string): Promise<void>
  remove(id: string): Promise<void>
  setRestartPolicy(id: string, policy: { Name: string; MaximumRetryCount?: number }): Promise<void>
  waitGone(id: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean>
  rename(id: string, name: string): Promise<void>
  wait(id: string): Promise<number>
  logs(id: string, tail?: number, since?: number): Promise<string>
  readFile(id: string, path: string): Promise<Buffer | undefined>
  /** whether a path exists in a container's filesystem (it need not run) */
  pathExists(id: string, path: string): Promise<boolean>
  runOnce(
    spec: Docker.ContainerCreateOptions,
    timeoutMs: number,
    signal?: AbortSignal
  ): Promise<{ exitCode: number; output: string }>
  /** a network's inspection; undefined when there is none */
  inspectNetwork(name: string): Promise<Docker.NetworkInspectInfo | undefined>
  connectNetwork(network: string, id: string, endpoint: Docker.EndpointSettings): Promise<void>
}

/**
 * The Engine API through dockerode. Every call waits out a daemon restart (src/docker/daemon-wait.ts):
 * reads and calls whose repeat acts once are repeated while the daemon is out of reach, calls
 * that could act twice only when the request never reached it, or after its state showed they
 * did not take effect.
 */
export class DockerClient implements DockerApi {
  readonly api: Docker
  private readonly daemon: DaemonWait
  constructor(
    private readonly host?: string,
    waitOptions: DaemonWaitOptions = {}
  ) {
    this.api = dockerFor(host)
    this.daemon = new DaemonWait(host ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock', waitOptions)
  }

  private read<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.daemon.call(what, 'read', fn)
  }

  daemonFaults(): number {
    return this.daemon.faultsSeen
  }

  async ping(): Promise<void> {
    try {
      await this.read('ping', () => this.api.ping())
    } catch (e) {
      const where = this.host
        ? `${this.host} (input 'docker-host')`
        : (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock')
      throw new Error(`cannot reach the Docker Engine at ${where}: ${(e as Error).message}`)
    }
  }

  engine(): Promise<Engine> {
    return this.read('version', () => readEngine(this.api))
  }

  podOf(id: string): Promise<string | undefined> {
    return this.read(`pod of ${id.slice(0, 12)}`, () => readPod(this.api, id))
  }

  /** Inspects a container by name or id; undefined when there is none. */
  async inspect(nameOrId: string): Promise<ContainerInfo | undefined> {
    try {
      return await this.read(`inspect of ${nameOrId}`, () => this.api.getContainer(nameOrId).inspect())
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined
      throw e
    }
  }

  async listByLabel(label: string): Promise<Docker.ContainerInfo[]> {
    return this.read('container list', () => this.api.listContainers({ all: true, filters: { label: [label] } }))
  }

  async listRunning(): Promise<Docker.ContainerInfo[]> {
    return this.read('container list', () => this.api.listContainers())
  }

  async inspectNetwork(name: string): Promise<Docker.NetworkInspectInfo | undefined> {
    return this.read(`inspect of network ${name}`, () => this.api.getNetwork(name).inspect()).catch(() => undefined)
  }

  async connectNetwork(network: string, id: string, endpoint: Docker.EndpointSettings): Promise<void> {
    await this.daemon.call(
      `connect of ${id.slice(0, 12)} to ${network}`,
      'checked',
      () => this.api.getNetwork(network).connect({ Container: id, EndpointConfig: endpoint }),
      async () => {
        const nets = (await this.inspect(id))?.NetworkSettings?.Networks ?? {}
        return nets[network] ? { value: undefined } : undefined
      }
    )
  }

  async restart(id: string, timeoutS: number): Promise<void> {
    // a repeat would restart the node twice: only when the request never reached the daemon
    await this.daemon.call(`restart of ${id.slice(0, 12)}`, 'once', () =>
      this.api.getContainer(id).restart({ t: timeoutS })
    )
  }

  async imageInfo(ref: string): Promise<ImageInfo | undefined> {
    try {
      const i = await this.read(`inspect of image ${ref}`, () => this.api.getImage(ref).inspect())
      return { id: i.Id, repoDigests: i.RepoDigests ?? [], config: i.Config }
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined
      throw e
    }
  }

  /**
   * Pulls a reference (by digest when it has one, else by tag), with registry auth from the
   * host's docker config. A pull with no progress for `stallMs` (a stalled registry) fails.
   */
  async pull(ref: ImageRef, signal?: AbortSignal, stallMs = PULL_STALL_MS): Promise<void> {
    const name = ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref)
    await this.daemon.call(`pull of ${name}`, 'idempotent', () => this.pullOnce(ref, name, signal, stallMs))
  }

  private async pullOnce(ref: ImageRef, name: string, signal: AbortSignal | undefined, stallMs: number): Promise<void> {
    const authconfig = registryAuth(ref.registry)
    const stream = await bounded(
      this.api.pull(name, authconfig ? { authconfig } : {}),
      stallMs,
      `pull of ${name}`,
      signal
    )
    await new Promise<void>((resolve, reject) => {
      let stall: NodeJS.Timeout | undefined
      const end = (e?: Error) => {
        clearTimeout(stall)
        signal?.removeEventListener('abort', onAbort)
        if (e) {
          ;(stream as unknown as { destroy?: () => void }).destroy?.()
          reject(e)
        } else resolve()
      }
      const arm = () => {
        clearTimeout(stall)
        stall = setTimeout(
          () => end(new Error(`pull of ${name} made no progress for ${Math.round(stallMs / 1000)} s`)),
          stallMs
        )
        stall.unref()
      }
      const onAbort = () => end(new Error('aborted'))
      signal?.addEventListener('abort', onAbort, { once: true })
      arm()
      this.api.modem.followProgress(
        stream,
        (err: Error | null, out: Array<{ error?: string }>) => {
          const failed = out?.find((o) => o.error)
          if (err) end(err)
          else if (failed) end(new Error(failed.error))
          else end()
        },
        arm
      )
    })
    // A digest pull leaves the image untagged; tag it so the container shows a readable name.
    if (ref.digest && ref.tag) await this.api.getImage(name).tag({ repo: repository(ref), tag: ref.tag })
  }

  /** Creates a container; a create the daemon made before the connection broke is found by its name and labels. */
  async create(spec: Docker.ContainerCreateOptions): Promise<string> {
    const sameLabels = (info: ContainerInfo) =>
      JSON.stringify(info.Config?.Labels ?? {}) === JSON.stringify(spec.Labels ?? {}) &&
      info.Config?.Image === spec.Image
    return this.daemon.call(
      `create of ${spec.name ?? 'a container'}`,
      // without a name, a container made before the cut cannot be told from another one
      spec.name ? 'checked' : 'once',
      async () => (await this.api.createContainer(spec)).id,
      async () => {
        const info = spec.name ? await this.inspect(spec.name) : undefined
        return info && sameLabels(info) ? { value: info.Id } : undefined
      }
    )
  }

  async start(id: string): Promise<void> {
    await this.daemon.call(`start of ${id.slice(0, 12)}`, 'idempotent', async (attempt) => {
      try {
        await this.api.getContainer(id).start()
      } catch (e) {
        // a repeat after a cut: the daemon had started it
        if (attempt === 0 || (e as { statusCode?: number }).statusCode !== 304) throw e
      }
    })
  }

  /** docker stop: the container's stop signal, then SIGKILL after `timeoutS`. Resolves when it has exited. */
  async stop(id: string, timeoutS: number): Promise<void> {
    const what = `docker stop of ${id.slice(0, 12)}`
    try {
      // the Engine kills after timeoutS; a daemon that still does not answer (a D-state process)
      // must not hold the job and the host lock until the job's own timeout
      await this.daemon.call(what, 'idempotent', () =>
        bounded(this.api.getContainer(id).stop({ t: timeoutS }), (timeoutS + STOP_GRACE_S) * 1000, what)
      )
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 304) throw e
    }
  }

  async signal(id: string, signal: string): Promise<void> {
    try {
      // a second signal is not the same request (a second SIGTERM can end a graceful shutdown)
      await this.daemon.call(`${signal} to ${id.slice(0, 12)}`, 'once', () =>
        this.api.getContainer(id).kill({ signal })
      )
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode
      if (code !== 409 && code !== 304) throw e
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.daemon.call(`remove of ${id.slice(0, 12)}`, 'idempotent', () =>
        this.api.getContainer(id).remove({ force: true, v: false })
      )
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e
    }
  }

  /** Sets a container's restart policy (docker update --restart). */
  async setRestartPolicy(id: string, policy: { Name: string; MaximumRetryCount?: number }): Promise<void> {
    await this.daemon.call(`restart policy of ${id.slice(0, 12)}`, 'idempotent', () =>
      this.api.getContainer(id).update({ RestartPolicy: policy })
    )
  }

  /** Waits until a container is gone (a `--rm` container after its stop); false when it is still there. */
  async waitGone(id: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const end = Date.now() + timeoutMs
    for (;;) {
      if (!(await this.inspect(id))) return true
      if (Date.now() >= end || signal?.aborted) return false
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  async rename(id: string, name: string): Promise<void> {
    await this.daemon.call(
      `rename of ${id.slice(0, 12)} to ${name}`,
      'checked',
      () => this.api.getContainer(id).rename({ name }),
      async () => ((await this.inspect(id))?.Name === `/${name}` ? { value: undefined } : undefined)
    )
  }

  /** Waits for a container to exit; returns its exit code. */
  async wait(id: string): Promise<number> {
    const r = (await this.read(`wait for ${id.slice(0, 12)}`, () => this.api.getContainer(id).wait())) as {
      StatusCode: number
    }
    return r.StatusCode
  }

  /** The last `tail` lines of a container's output (stdout and stderr). */
  async logs(id: string, tail = 50, since?: number): Promise<string> {
    try {
      const buf = (await this.read(`logs of ${id.slice(0, 12)}`, () =>
        this.api.getContainer(id).logs({ stdout: true, stderr: true, tail, since, follow: false })
      )) as unknown as Buffer
      return demux(buf)
    } catch {
      return ''
    }
  }

  /** Reads one file from a container's filesystem (also from a stopped container). */
  async readFile(id: string, path: string): Promise<Buffer | undefined> {
    try {
      return await this.read(`read of ${path} in ${id.slice(0, 12)}`, async () => {
        const stream = await this.api.getContainer(id).getArchive({ path })
        const chunks: Buffer[] = []
        for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c)
        return untarFirstFile(Buffer.concat(chunks))
      })
    } catch {
      return undefined
    }
  }

  async pathExists(id: string, path: string): Promise<boolean> {
    return this.read(`stat of ${path} in ${id.slice(0, 12)}`, () =>
      this.api.getContainer(id).infoArchive({ path })
    ).then(
      () => true,
      () => false
    )
  }

  /**
   * Runs a one-off container to completion and returns its exit code and output. Bounded by
   * `timeoutMs` and ended by `signal` (the container is removed either way).
   */
  async runOnce(
    spec: Docker.ContainerCreateOptions,
    timeoutMs: number,
    signal?: AbortSignal
  ): Promise<{ exitCode: number; output: string }> {
    const id = await this.create(spec)
    try {
      await this.start(id)
      const exit = await bounded(this.wait(id), timeoutMs, spec.name ?? 'one-off container', signal)
      return { exitCode: exit, output: await this.logs(id, 200) }
    } finally {
      await this.remove(id)
    }
  }
}

/** A pull fails after this long without any progress message. */
const PULL_STALL_MS = 5 * 60_000
/** How long past its own stop timeout a `docker stop` may take to answer. */
const STOP_GRACE_S = 60

/** The digest of `ref`'s repository among an image's RepoDigests. */
export function digestFor(image: ImageInfo, ref: ImageRef): string | undefined {
  const want = normaliseRepository(repository(ref))
  for (const rd of image.repoDigests) {
    const at = rd.indexOf('@')
    if (at < 0) continue
    if (normaliseRepository(rd.slice(0, at)) === want) return rd.slice(at + 1)
  }
  return undefined
}

/** Any digest of the image (for display when the repository differs). */
export function anyDigest(image: ImageInfo): string | undefined {
  const rd = image.repoDigests[0]
  return rd ? rd.slice(rd.indexOf('@') + 1) : undefined
}
