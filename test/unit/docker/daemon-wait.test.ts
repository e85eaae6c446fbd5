// A Docker daemon restart (docs/algorithm.md, "Docker daemon restarts"): which failed calls are
// repeated, and the bounded, cancellable wait for the daemon, against a fake Engine on a unix
// socket that is missing, then refuses, then answers; or that cuts a request it has acted on.
import { afterEach, describe, expect, it, test } from '@jest/globals'
import { createServer, type Server, type Socket } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DockerClient } from '../../../src/docker/client.js'
import { connectionFault, mayRetry, type CallKind } from '../../../src/docker/daemon-wait.js'

const err = (code: string, message = `${code} x`, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { code, ...extra })

describe('which failures of a Docker call are a daemon out of reach', () => {
  test.each([
    ['the socket refuses (daemon down)', err('ECONNREFUSED', 'connect ECONNREFUSED /run/docker.sock'), 'unreached'],
    ['the socket file is gone', err('ENOENT', 'connect ENOENT /run/docker.sock', { syscall: 'connect' }), 'unreached'],
    ['reset while the request was out', err('ECONNRESET', 'read ECONNRESET'), 'cut'],
    ['socket hang up (no answer, closed)', err('ECONNRESET', 'socket hang up'), 'cut'],
    ['broken pipe while sending', err('EPIPE', 'write EPIPE'), 'cut'],
    [
      'a 500 is an answer of a running daemon',
      Object.assign(new Error('server error'), { statusCode: 500 }),
      undefined
    ],
    ['a 404 is an answer', Object.assign(new Error('no such container'), { statusCode: 404 }), undefined],
    [
      'ENOENT of a file, not of the socket',
      err('ENOENT', "ENOENT: no such file, open 'x'", { syscall: 'open' }),
      undefined
    ],
    ['any other error', new Error('bad parameter'), undefined],
    ['not an error', 'x', undefined]
  ])('%s', (_what, e, fault) => {
    expect(connectionFault(e)).toBe(fault)
  })

  // 'unreached': the request never reached the daemon, so nothing happened; 'cut': it may have.
  test.each<[CallKind, 'unreached' | 'cut' | undefined, boolean]>([
    ['read', 'unreached', true],
    ['read', 'cut', true],
    ['idempotent', 'unreached', true],
    ['idempotent', 'cut', true],
    ['checked', 'unreached', true],
    ['checked', 'cut', true],
    ['once', 'unreached', true],
    ['once', 'cut', false],
    ['read', undefined, false],
    ['once', undefined, false]
  ])('a %s call after %s: repeated %s', (kind, fault, retried) => {
    expect(mayRetry(kind, fault)).toBe(retried)
  })
})

/** A fake Engine on a unix socket: `up()` serves, `down()` closes (the socket file left: refused). */
function fakeEngine(handle: (method: string, url: string, sock: Socket) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'clr-dw-'))
  const path = join(dir, 'docker.sock')
  let srv: Server | undefined
  const sockets = new Set<Socket>()
  return {
    path,
    host: `unix://${path}`,
    up: () =>
      new Promise<void>((res) => {
        rmSync(path, { force: true })
        srv = createServer((s) => {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          let buf = ''
          s.on('data', (d) => {
            buf += d.toString()
            const end = buf.indexOf('\r\n\r\n')
            if (end < 0) return
            const [method, url] = buf.slice(0, buf.indexOf('\r\n')).split(' ')
            const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0)
            if (buf.length < end + 4 + len) return
            buf = ''
            handle(method, url, s)
          })
        })
        srv.listen(path, () => res())
      }),
    /** a socket file nobody listens on: connect is refused */
    refusing: () => {
      rmSync(path, { force: true })
      writeFileSync(path, '')
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((res) => (srv ? srv.close(() => res()) : res()))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

const reply = (s: Socket, status: number, body: unknown) => {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  s.end(
    `HTTP/1.1 ${status} X\r\nContent-Type: ${typeof body === 'string' ? 'text/plain' : 'application/json'}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`
  )
}

describe('a Docker call waits for a restarting daemon, bounded and cancellable', () => {
  let engine: ReturnType<typeof fakeEngine> | undefined
  afterEach(async () => {
    await engine?.close()
    engine = undefined
  })

  it('a ping while the socket is missing, then refused, succeeds once the daemon answers', async () => {
    engine = fakeEngine((_m, url, s) => (url.endsWith('/_ping') ? reply(s, 200, 'OK') : reply(s, 404, {})))
    const waits: string[] = []
    const d = new DockerClient(engine.host, { waitMs: 10_000, pollMs: 50, onWait: (m) => waits.push(m) })
    const e = engine
    setTimeout(() => e.refusing(), 150)
    setTimeout(() => void e.up(), 400)
    const t0 = Date.now()
    await expect(d.ping()).resolves.toBeUndefined()
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350)
    expect(waits).toHaveLength(1)
    expect(waits[0]).toMatch(/Docker Engine .* does not answer .*waiting up to 10 s/)
  })

  it('a daemon that stays away: the call fails after the bound, naming the wait', async () => {
    engine = fakeEngine(() => undefined)
    engine.refusing()
    const d = new DockerClient(engine.host, { waitMs: 300, pollMs: 50 })
    const t0 = Date.now()
    await expect(d.inspect('chainlink')).rejects.toThrow(/did not answer for 0\.3 s.*ECONNREFUSED/)
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it('the ping of the post step and repair names the Engine when it gives up', async () => {
    engine = fakeEngine(() => undefined)
    engine.refusing()
    const d = new DockerClient(engine.host, { waitMs: 200, pollMs: 50 })
    await expect(d.ping()).rejects.toThrow(/cannot reach the Docker Engine at unix:\/\/.*docker\.sock.*0\.2 s/)
  })

  it('the run cancelled: the wait ends at once', async () => {
    engine = fakeEngine(() => undefined)
    engine.refusing()
    const ac = new AbortController()
    const d = new DockerClient(engine.host, { waitMs: 60_000, pollMs: 50, signal: ac.signal })
    setTimeout(() => ac.abort(), 150)
    const t0 = Date.now()
    await expect(d.listRunning()).rejects.toThrow(/cancelled/)
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it('an answer of the daemon (a 500) is not waited on', async () => {
    engine = fakeEngine((_m, _u, s) => reply(s, 500, { message: 'boom' }))
    await engine.up()
    const d = new DockerClient(engine.host, { waitMs: 60_000, pollMs: 50 })
    const t0 = Date.now()
    await expect(d.inspect('chainlink')).rejects.toMatchObject({ statusCode: 500 })
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it('a create the daemon acted on before the connection broke is not made twice', async () => {
    const created: string[] = []
    engine = fakeEngine((m, url, s) => {
      if (m === 'POST' && url.includes('/containers/create')) {
        created.push(url)
        if (created.length === 1) return s.destroy() // acted on, no answer
        return reply(s, 409, { message: 'Conflict. The container name "/x-next" is already in use' })
      }
      if (m === 'GET' && url.includes('/containers/x-next/json'))
        return created.length
          ? reply(s, 200, { Id: 'abc123', Name: '/x-next', Config: { Labels: { run: 'r1' }, Image: 'img:1' } })
          : reply(s, 404, { message: 'no such container' })
      reply(s, 404, {})
    })
    await engine.up()
    const d = new DockerClient(engine.host, { waitMs: 5_000, pollMs: 50 })
    await expect(d.create({ name: 'x-next', Image: 'img:1', Labels: { run: 'r1' } })).resolves.toBe('abc123')
    expect(created).toHaveLength(1)
  })

  it('a create whose connection broke before the daemon made it is made again', async () => {
    const created: string[] = []
    let cut = true
    engine = fakeEngine((m, url, s) => {
      if (m === 'POST' && url.includes('/containers/create')) {
        if (cut) {
          cut = false
          return s.destroy() // broke before anything was made
        }
        created.push(url)
        return reply(s, 201, { Id: 'def456', Warnings: [] })
      }
      if (m === 'GET' && url.includes('/containers/x-next/json')) return reply(s, 404, { message: 'no such container' })
      reply(s, 404, {})
    })
    await engine.up()
    const d = new DockerClient(engine.host, { waitMs: 5_000, pollMs: 50 })
    await expect(d.create({ name: 'x-next', Image: 'img:1', Labels: { run: 'r1' } })).resolves.toBe('def456')
    expect(created).toHaveLength(1)
  })

  it('a signal whose connection broke is not sent again (a second SIGTERM is not the same request)', async () => {
    const kills: string[] = []
    engine = fakeEngine((m, url, s) => {
      if (m === 'POST' && url.includes('/kill')) {
        kills.push(url)
        return s.destroy()
      }
      reply(s, 404, {})
    })
    await engine.up()
    const d = new DockerClient(engine.host, { waitMs: 5_000, pollMs: 50 })
    await expect(d.signal('abc', 'SIGTERM')).rejects.toThrow(/socket hang up|ECONNRESET/)
    expect(kills).toHaveLength(1)
  })

  it('a start whose connection broke after the daemon started it is done', async () => {
    const starts: string[] = []
    engine = fakeEngine((m, url, s) => {
      if (m === 'POST' && url.includes('/start')) {
        starts.push(url)
        if (starts.length === 1) return s.destroy()
        return reply(s, 304, '')
      }
      reply(s, 404, {})
    })
    await engine.up()
    const d = new DockerClient(engine.host, { waitMs: 5_000, pollMs: 50 })
    await expect(d.start('abc')).resolves.toBeUndefined()
    expect(starts).toHaveLength(2)
  })

  it('a rename whose connection broke after the daemon renamed is done', async () => {
    const renames: string[] = []
    engine = fakeEngine((m, url, s) => {
      if (m === 'POST' && url.includes('/rename')) {
        renames.push(url)
        return s.destroy()
      }
      if (m === 'GET' && url.includes('/containers/abc/json')) return reply(s, 200, { Id: 'abc', Name: '/chainlink' })
      reply(s, 404, {})
    })
    await engine.up()
    const d = new DockerClient(engine.host, { waitMs: 5_000, pollMs: 50 })
    await expect(d.rename('abc', 'chainlink')).resolves.toBeUndefined()
    expect(renames).toHaveLength(1)
  })
})
