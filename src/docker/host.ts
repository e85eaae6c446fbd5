// How the action reaches the Docker Engine: DOCKER_HOST (input 'docker-host'), a unix socket by
// default, TCP with TLS by the Docker CLI's conventions (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH).
import Docker from 'dockerode'
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

/**
 * The client certificate files for a tcp:// Docker host, by the Docker CLI's conventions:
 * DOCKER_TLS_VERIFY set (to anything) asks for TLS with the server verified against
 * DOCKER_CERT_PATH/ca.pem (default ~/.docker) and the client's cert.pem and key.pem.
 */
export function dockerTls(
  host: string,
  env: Record<string, string | undefined> = process.env
): { ca: string; cert: string; key: string } | undefined {
  if (host.startsWith('unix://') || !env.DOCKER_TLS_VERIFY) return undefined
  const dir = env.DOCKER_CERT_PATH || join(homedir(), '.docker')
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }
}

/** A Docker host on this machine (127.0.0.0/8, ::1, localhost): plain TCP there never leaves the host. */
export function isLoopbackDockerHost(host: string): boolean {
  let h: string
  try {
    h = new URL(host.replace(/^tcp:/, 'http:')).hostname.replace(/^\[|\]$/g, '')
  } catch {
    return false
  }
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}

/** A dockerode client for `host` (else DOCKER_HOST, else the default socket). */
export function dockerFor(host?: string): Docker {
  const h = host ?? process.env.DOCKER_HOST
  if (!h || h.startsWith('unix://'))
    return new Docker({ socketPath: h ? h.slice('unix://'.length) : '/var/run/docker.sock', host: undefined })
  const u = new URL(h.replace(/^tcp:/, 'http:'))
  const tls = dockerTls(h)
  // TLS by DOCKER_TLS_VERIFY (verified against its ca.pem, the host name checked) or by https://.
  return new Docker({
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port || (tls || u.protocol === 'https:' ? 2376 : 2375)),
    protocol: tls || u.protocol === 'https:' ? 'https' : 'http',
    ...(tls ? { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : {})
  })
}
