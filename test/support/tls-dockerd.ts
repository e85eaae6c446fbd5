// A dedicated Docker Engine that only speaks TLS with client certificates (--tlsverify) on
// 127.0.0.1, for the tests of `docker-host: tcp://` with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH.
// It has its own data root, exec root, pidfile and containerd namespace, no iptables rules, and
// a bridge of its own: `--bridge=none` is NOT used, because dockerd started with it deletes the
// host's docker0 interface (the bed's dockerd's bridge). It is stopped by its pid.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../src/docker.js'

export interface TlsDockerd {
  host: string
  /** DOCKER_CERT_PATH for a client: ca.pem, cert.pem, key.pem */
  certPath: string
  /** a second CA and client pair the daemon does not trust */
  strangerCertPath: string
  stop(): Promise<void>
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, in the Docker CLI's file names. */
function makeCerts(dir: string): void {
  mkdirSync(dir, { recursive: true })
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=clr-test-ca',
    '-keyout',
    'ca-key.pem',
    '-out',
    'ca.pem'
  )
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n')
  for (const [who, ext] of [
    ['server', 'server.ext'],
    ['client', 'client.ext']
  ]) {
    openssl(
      dir,
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${who}`,
      '-keyout',
      `${who}-key.pem`,
      '-out',
      `${who}.csr`
    )
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca-key.pem',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      `${who}-cert.pem`
    )
  }
  // the client's files under the names the Docker CLI (and the action) look for
  writeFileSync(join(dir, 'cert.pem'), readFileSync(join(dir, 'client-cert.pem')))
  writeFileSync(join(dir, 'key.pem'), readFileSync(join(dir, 'client-key.pem')))
}

function ping(port: number, certPath: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/_ping',
        ca: readFileSync(join(certPath, 'ca.pem')),
        cert: readFileSync(join(certPath, 'cert.pem')),
        key: readFileSync(join(certPath, 'key.pem')),
        timeout: 1000
      },
      (r) => {
        r.resume()
        res(r.statusCode === 200)
      }
    )
    req.on('error', () => res(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

export async function startTlsDockerd(): Promise<TlsDockerd> {
  const root = mkdtempSync(join(tmpdir(), 'clr-tls-dockerd-'))
  const certPath = join(root, 'certs')
  const strangerCertPath = join(root, 'stranger')
  makeCerts(certPath)
  makeCerts(strangerCertPath)
  const port = await freePort('127.0.0.1')
  const exec = mkdtempSync('/tmp/clr-x-') // exec-root: a short path (unix socket names are short)
  const bridge = `clr-tls-${port}`
  execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge'])
  execFileSync('ip', ['addr', 'add', '10.231.77.1/24', 'dev', bridge])
  const child: ChildProcess = spawn(
    'dockerd',
    [
      `--host=tcp://127.0.0.1:${port}`,
      '--tlsverify',
      `--tlscacert=${join(certPath, 'ca.pem')}`,
      `--tlscert=${join(certPath, 'server-cert.pem')}`,
      `--tlskey=${join(certPath, 'server-key.pem')}`,
      `--data-root=${join(root, 'data')}`,
      `--exec-root=${exec}`,
      `--pidfile=${join(root, 'dockerd.pid')}`,
      `--bridge=${bridge}`,
      '--iptables=false',
      '--ip-masq=false',
      '--storage-driver=vfs',
      '--containerd-namespace=clr-tls-test',
      '--containerd-plugins-namespace=clr-tls-test-plugins'
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] }
  )
  let log = ''
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)))
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  const stop = async () => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGTERM')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20000))])
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL')
    rmSync(root, { recursive: true, force: true })
    rmSync(exec, { recursive: true, force: true })
    execFileSync('ip', ['link', 'del', bridge])
  }
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) break
    if (await ping(port, certPath)) return { host: `tcp://127.0.0.1:${port}`, certPath, strangerCertPath, stop }
    await new Promise((r) => setTimeout(r, 200))
  }
  await stop()
  throw new Error(`the TLS dockerd did not come up:\n${log}`)
}
