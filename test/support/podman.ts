// Podman's Docker-compatible API for the Podman tests (docs/podman.md): the service that
// test/bed/podman.sh runs on the bed's own socket, started here when it is not running (and then
// stopped here, by its pid), and the simulator images pulled into Podman's store from the bed's
// registry.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import Docker from 'dockerode'
import { loadBed, simImage } from './bed.js'

export const PODMAN_SOCK = process.env.BED_PODMAN_SOCK ?? '/run/clr-podman/podman.sock'

/** Why the Podman tests cannot run here (undefined: they can). */
export function podmanMissing(): string | undefined {
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' })
    return undefined
  } catch {
    return 'podman is not installed (bash test/bed/up.sh installs it)'
  }
}

/**
 * Starts the service when its socket does not answer (test/bed/podman.sh) and pulls `tags` of the
 * simulator into Podman. Returns a client of the socket and the pid to stop afterwards when this
 * call started the service.
 */
export function ensurePodman(tags: string[]): { api: Docker; startedPid?: number } {
  const script = resolve(import.meta.dirname, '../bed/podman.sh')
  const out = execFileSync('bash', [script], {
    encoding: 'utf8',
    env: { ...process.env, BED_PODMAN_SOCK: PODMAN_SOCK }
  })
  const started = /^started (\d+)$/m.exec(out)?.[1]
  if (!existsSync(PODMAN_SOCK)) throw new Error(`no Podman socket at ${PODMAN_SOCK} after ${script}`)
  const bed = loadBed()
  for (const tag of tags)
    execFileSync('podman', ['pull', '-q', '--tls-verify=false', simImage(tag, bed)], { stdio: 'ignore' })
  return { api: new Docker({ socketPath: PODMAN_SOCK }), startedPid: started ? Number(started) : undefined }
}

/** Stops the service this run started (by its pid), nothing else. */
export function stopPodman(pid: number | undefined): void {
  if (!pid) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    // already gone
  }
}

/** Runs the podman CLI (same store as the service: both run as root). */
export function podmanCli(...args: string[]): string {
  return execFileSync('podman', args, { encoding: 'utf8' })
}

export const podmanDockerHost = `unix://${PODMAN_SOCK}`
