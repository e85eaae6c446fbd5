// A dedicated Docker Engine (support/dedicated-dockerd.ts) that only speaks TLS with client
// certificates (--tlsverify) on 127.0.0.1, for the tests of `docker-host: tcp://` with
// DOCKER_TLS_VERIFY/DOCKER_CERT_PATH. It is stopped by its pid.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../src/docker/client.js'
import { startDedicatedDockerd } from './dedicated-dockerd.js'

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

export async function startTlsDockerd(): Promise<TlsDockerd> {
  const root = mkdtempSync(join(tmpdir(), 'clr-tls-certs-'))
  const certPath = join(root, 'certs')
  const strangerCertPath = join(root, 'stranger')
  makeCerts(certPath)
  makeCerts(strangerCertPath)
  const port = await freePort('127.0.0.1')
  const file = (f: string) => readFileSync(join(certPath, f))
  const d = await startDedicatedDockerd({
    tls: {
      port,
      dir: certPath,
      client: {
        host: '127.0.0.1',
        port,
        protocol: 'https',
        ca: file('ca.pem'),
        cert: file('cert.pem'),
        key: file('key.pem')
      }
    }
  }).catch((e: unknown) => {
    rmSync(root, { recursive: true, force: true })
    throw e
  })
  return {
    host: d.host,
    certPath,
    strangerCertPath,
    stop: async () => {
      await d.stop()
      rmSync(root, { recursive: true, force: true })
    }
  }
}
