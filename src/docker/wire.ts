// What travels on the wire to and from the Engine that is no API call: registry auth from the
// host's docker config, the multiplexed log stream, the archive of one file.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'

export function registryAuth(registry?: string): Record<string, string> | undefined {
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
