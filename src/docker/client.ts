// The Docker Engine, through its API (dockerode). Everything the operations need from Docker is
// here, as small methods on plain values, so the orchestration can be read without the API.
import Docker from 'dockerode'
import { createServer } from 'node:net'
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dockerFor } from './host.js'
import { normaliseRepository, repository, repoTag, type ImageRef } from '../image/ref.js'

export type ContainerInfo = Docker.ContainerInspectInfo

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
  runOnce(
    spec: Docker.ContainerCreateOptions,
    timeoutMs: number,
    signal?: AbortSignal
  ): Promise<{ exitCode: number; output: string }>
  /** a network's inspection; undefined when there is none */
  inspectNetwork(name: string): Promise<Docker.NetworkInspectInfo | undefined>
  connectNetwork(network: string, id: string, endpoint: Docker.EndpointSettings): Promise<void>
}

export class DockerClient implements DockerApi {
  readonly api: Docker
  constructor(private readonly host?: string) {
    this.api = dockerFor(host)
  }

  async ping(): Promise<void> {
    try {
      await this.api.ping()
    } catch (e) {
      const where = this.host
        ? `${this.host} (input 'docker-host')`
        : (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock')
      throw new Error(`cannot reach the Docker Engine at ${where}: ${(e as Error).message}`)
    }
  }

  /** Inspects a container by name or id; undefined when there is none. */
  async inspect(nameOrId: string): Promise<ContainerInfo | undefined> {
    try {
      return await this.api.getContainer(nameOrId).inspect()
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined
      throw e
    }
  }

  async listByLabel(label: string): Promise<Docker.ContainerInfo[]> {
    return this.api.listContainers({ all: true, filters: { label: [label] } })
  }

  async listRunning(): Promise<Docker.ContainerInfo[]> {
    return this.api.listContainers()
  }

  async inspectNetwork(name: string): Promise<Docker.NetworkInspectInfo | undefined> {
    return this.api
      .getNetwork(name)
      .inspect()
      .catch(() => undefined)
  }

  async connectNetwork(network: string, id: string, endpoint: Docker.EndpointSettings): Promise<void> {
    await this.api.getNetwork(network).connect({ Container: id, EndpointConfig: endpoint })
  }

  async restart(id: string, timeoutS: number): Promise<void> {
    await this.api.getContainer(id).restart({ t: timeoutS })
  }

  async imageInfo(ref: string): Promise<ImageInfo | undefined> {
    try {
      const i = await this.api.getImage(ref).inspect()
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

  async create(spec: Docker.ContainerCreateOptions): Promise<string> {
    const c = await this.api.createContainer(spec)
    return c.id
  }

  async start(id: string): Promise<void> {
    await this.api.getContainer(id).start()
  }

  /** docker stop: the container's stop signal, then SIGKILL after `timeoutS`. Resolves when it has exited. */
  async stop(id: string, timeoutS: number): Promise<void> {
    try {
      // the Engine kills after timeoutS; a daemon that still does not answer (a D-state process)
      // must not hold the job and the host lock until the job's own timeout
      await bounded(
        this.api.getContainer(id).stop({ t: timeoutS }),
        (timeoutS + STOP_GRACE_S) * 1000,
        `docker stop of ${id.slice(0, 12)}`
      )
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 304) throw e
    }
  }

  async signal(id: string, signal: string): Promise<void> {
    try {
      await this.api.getContainer(id).kill({ signal })
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode
      if (code !== 409 && code !== 304) throw e
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.api.getContainer(id).remove({ force: true, v: false })
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e
    }
  }

  /** Sets a container's restart policy (docker update --restart). */
  async setRestartPolicy(id: string, policy: { Name: string; MaximumRetryCount?: number }): Promise<void> {
    await this.api.getContainer(id).update({ RestartPolicy: policy })
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
    await this.api.getContainer(id).rename({ name })
  }

  /** Waits for a container to exit; returns its exit code. */
  async wait(id: string): Promise<number> {
    const r = (await this.api.getContainer(id).wait()) as { StatusCode: number }
    return r.StatusCode
  }

  /** The last `tail` lines of a container's output (stdout and stderr). */
  async logs(id: string, tail = 50, since?: number): Promise<string> {
    try {
      const buf = (await this.api
        .getContainer(id)
        .logs({ stdout: true, stderr: true, tail, since, follow: false })) as unknown as Buffer
      return demux(buf)
    } catch {
      return ''
    }
  }

  /** Reads one file from a container's filesystem (also from a stopped container). */
  async readFile(id: string, path: string): Promise<Buffer | undefined> {
    try {
      const stream = await this.api.getContainer(id).getArchive({ path })
      const chunks: Buffer[] = []
      for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c)
      return untarFirstFile(Buffer.concat(chunks))
    } catch {
      return undefined
    }
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

/** `p`, or an error once `ms` passed or `signal` aborted (the underlying request is left to end). */
export function bounded<T>(p: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(new Error(`${what}: cancelled`))
    const timer = setTimeout(() => done(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms)
    timer.unref()
    const onAbort = () => done(new Error(`${what}: cancelled`))
    signal?.addEventListener('abort', onAbort, { once: true })
    const done = (e: Error | undefined, v?: T) => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (e) reject(e)
      else resolve(v as T)
    }
    p.then(
      (v) => done(undefined, v),
      (e: Error) => done(e)
    )
  })
}

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

export function containerName(info: ContainerInfo): string {
  return info.Name.replace(/^\//, '')
}

/** The container's addresses on its networks (empty with host networking). */
export function containerIps(info: ContainerInfo): string[] {
  return Object.values(info.NetworkSettings?.Networks ?? {})
    .map((n) => n.IPAddress)
    .filter((ip): ip is string => !!ip)
}

export function envMap(info: ContainerInfo): Map<string, string> {
  const m = new Map<string, string>()
  for (const e of info.Config.Env ?? []) {
    const i = e.indexOf('=')
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1))
  }
  return m
}

/** A free TCP port on hostIp ('' = all interfaces), not in `avoid`. */
export function freePort(hostIp: string, avoid: Set<number> = new Set()): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen({ host: hostIp && hostIp !== '0.0.0.0' ? hostIp : undefined, port: 0 }, () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => (avoid.has(port) ? freePort(hostIp, avoid).then(resolve, reject) : resolve(port)))
    })
  })
}

function registryAuth(registry?: string): Record<string, string> | undefined {
  try {
    const cfg = JSON.parse(
      readFileSync(`${process.env.DOCKER_CONFIG ?? homedir() + '/.docker'}/config.json`, 'utf8')
    ) as { auths?: Record<string, { auth?: string }> }
    const key = registry ?? 'https://index.docker.io/v1/'
    const entry = cfg.auths?.[key] ?? cfg.auths?.[`https://${key}`]
    if (!entry?.auth) return undefined
    const [username, ...rest] = Buffer.from(entry.auth, 'base64').toString('utf8').split(':')
    return { username, password: rest.join(':'), serveraddress: key }
  } catch {
    return undefined
  }
}

/** Docker multiplexes stdout/stderr in 8-byte framed chunks when there is no TTY. */
export function demux(buf: Buffer): string {
  if (!Buffer.isBuffer(buf)) return String(buf ?? '')
  if (buf.length < 8 || (buf[0] !== 1 && buf[0] !== 2) || buf[1] !== 0) return buf.toString('utf8')
  const parts: Buffer[] = []
  let i = 0
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4)
    parts.push(buf.subarray(i + 8, i + 8 + len))
    i += 8 + len
  }
  return Buffer.concat(parts).toString('utf8')
}

/** The first regular file of a tar archive (what the archive API returns for one path). */
export function untarFirstFile(tar: Buffer): Buffer | undefined {
  let off = 0
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512)
    if (header.every((b) => b === 0)) return undefined
    const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/, '').trim() || '0', 8)
    const type = String.fromCharCode(header[156] || 48)
    const body = off + 512
    if (type === '0' || type === '\0') return tar.subarray(body, body + size)
    off = body + Math.ceil(size / 512) * 512
  }
  return undefined
}
