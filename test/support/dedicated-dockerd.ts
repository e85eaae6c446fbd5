// A Docker Engine of the tests' own, beside the bed's shared one: its own socket (a unix socket,
// or TCP with --tlsverify on 127.0.0.1), data root, exec root, pidfile, containerd (started by it,
// under its exec root) and containerd namespace, no iptables rules, and a bridge of its own.
// `--bridge=none` is NOT used: dockerd started with it deletes the host's docker0 interface (the
// bed's dockerd's bridge). It can be killed with SIGKILL and started again on the same roots (a
// real daemon crash: its containerd and the containers' shims live on), and is stopped by pid.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'

export interface DedicatedDockerd {
  /** DOCKER_HOST / the `docker-host` input for it */
  host: string
  /** a client of it */
  api: Docker
  /** the bridge's gateway address: the host, as containers on its default bridge reach it */
  gateway: string
  /** SIGKILL, as a crash: no shutdown of its containers; waits for the process to go */
  kill(): Promise<void>
  /** starts it again on the same roots (unless it answers) and waits until it answers */
  start(): Promise<void>
  /** `docker` CLI against it */
  cli(...args: string[]): string
  /** graceful stop (SIGTERM, SIGKILL after 20 s), its containerd too, then its roots and bridge removed */
  stop(): Promise<void>
}

export interface DockerdOptions {
  /** TCP with --tlsverify on this port, with the server certificate files (dir has ca.pem, server-cert.pem, server-key.pem) */
  tls?: { port: number; dir: string; client: Docker.DockerOptions }
  /** the bridge's /24 (third octet of 10.231.x.0), chosen free when not given */
  subnet?: number
  /** --live-restore: containers keep running while the daemon is down (a daemon option operators use) */
  liveRestore?: boolean
}

function freeSubnet(): number {
  const used = execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' })
  for (let i = 0; i < 50; i++) {
    const n = 100 + Math.floor(Math.random() * 150)
    if (!used.includes(`10.231.${n}.`)) return n
  }
  throw new Error('no free 10.231.x.0/24 for a dedicated dockerd bridge')
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function cmdline(pid: string): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  } catch {
    return []
  }
}

/** The pids of containerd shims of one containerd namespace. */
function shimsOf(namespace: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      const a = cmdline(d)
      return a[0]?.includes('containerd-shim') && a[a.indexOf('-namespace') + 1] === namespace
    })
    .map(Number)
}

/** Children of a process, from every one of its threads (a Go program forks from any). */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
    )
  } catch {
    return []
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone
  }
}

function aliveNotZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

export async function startDedicatedDockerd(o: DockerdOptions = {}): Promise<DedicatedDockerd> {
  const root = mkdtempSync(join(tmpdir(), 'clr-dockerd-'))
  const exec = mkdtempSync('/tmp/clr-x-') // exec-root: a short path (unix socket names are short)
  const n = o.subnet ?? freeSubnet()
  const bridge = `clr-br-${n}`
  const gateway = `10.231.${n}.1`
  execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge'])
  execFileSync('ip', ['addr', 'add', `${gateway}/24`, 'dev', bridge])
  execFileSync('ip', ['link', 'set', bridge, 'up'])
  const sock = join(exec, 'docker.sock')
  const host = o.tls ? `tcp://127.0.0.1:${o.tls.port}` : `unix://${sock}`
  const listen = o.tls
    ? [
        `--host=${host}`,
        '--tlsverify',
        `--tlscacert=${join(o.tls.dir, 'ca.pem')}`,
        `--tlscert=${join(o.tls.dir, 'server-cert.pem')}`,
        `--tlskey=${join(o.tls.dir, 'server-key.pem')}`
      ]
    : [`--host=${host}`]
  const args = [
    ...listen,
    `--data-root=${join(root, 'data')}`,
    `--exec-root=${exec}`,
    `--pidfile=${join(root, 'dockerd.pid')}`,
    `--bridge=${bridge}`,
    '--iptables=false',
    '--ip-masq=false',
    '--storage-driver=overlay2',
    `--containerd-namespace=clr-test-${n}`,
    `--containerd-plugins-namespace=clr-test-${n}-plugins`,
    ...(o.liveRestore ? ['--live-restore'] : [])
  ]
  const api = new Docker(o.tls ? o.tls.client : { socketPath: sock })
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let log = ''
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null

  const start = async () => {
    if (
      running() &&
      (await api.ping().then(
        () => true,
        () => false
      ))
    )
      return
    await kill()
    forgetDeadContainerd()
    const c = spawn('dockerd', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    child = c
    c.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)))
    exited = new Promise<void>((res) => c.once('exit', () => res()))
    for (let i = 0; i < 300 && running(); i++) {
      if (
        await api.ping().then(
          () => true,
          () => false
        )
      )
        return
      await new Promise((r) => setTimeout(r, 200))
    }
    throw new Error(`the dedicated dockerd did not come up:\n${log}`)
  }
  // the containerd it started (its pid under the exec root), stopped by pid after dockerd
  const containerdPidFile = join(exec, 'containerd', 'containerd.pid')
  const containerdPid = () =>
    existsSync(containerdPidFile) ? Number(readFileSync(containerdPidFile, 'utf8').trim()) : undefined
  // dockerd's containerd dies with it (parent-death signal). On a host, init reaps it at once;
  // here PID 1 may leave it a zombie a while, and dockerd, finding its pid "alive", would wait
  // for its socket instead of starting a new one: a dead containerd's pid file goes, as on a host.
  const forgetDeadContainerd = () => {
    const pid = containerdPid()
    if (pid && !aliveNotZombie(pid)) rmSync(containerdPidFile, { force: true })
  }
  const kill = async () => {
    if (running() && child?.pid) process.kill(child.pid, 'SIGKILL')
    await exited
    const pid = containerdPid()
    for (let i = 0; i < 50 && pid && aliveNotZombie(pid); i++) await new Promise((r) => setTimeout(r, 100))
  }
  const stop = async () => {
    const cpid = containerdPid()
    if (running() && child?.pid) process.kill(child.pid, 'SIGTERM')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20000))])
    if (running() && child?.pid) process.kill(child.pid, 'SIGKILL')
    if (cpid && alive(cpid)) {
      process.kill(cpid, 'SIGTERM')
      for (let i = 0; i < 50 && alive(cpid); i++) await new Promise((r) => setTimeout(r, 200))
      if (alive(cpid)) process.kill(cpid, 'SIGKILL')
    }
    // shims of containers a crash left behind (the restarted daemon lost track of them) outlive
    // containerd: each, with the container it runs, goes by pid (its namespace is this daemon's)
    for (const pid of shimsOf(`clr-test-${n}`)) {
      for (const c of childrenOf(pid)) killPid(c)
      killPid(pid)
    }
    // overlay mounts of containers a crash left behind go before the roots
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1])
      .filter((m) => m && (m.startsWith(root) || m.startsWith(exec)))
      .reverse()
    for (const m of mounts) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' })
      } catch {
        // already gone
      }
    }
    rmSync(root, { recursive: true, force: true })
    rmSync(exec, { recursive: true, force: true })
    execFileSync('ip', ['link', 'del', bridge])
  }
  const cli = (...a: string[]) =>
    execFileSync('docker', ['-H', host, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    await start()
  } catch (e) {
    await stop()
    throw e
  }
  return { host, api, gateway, kill, start, cli, stop }
}
