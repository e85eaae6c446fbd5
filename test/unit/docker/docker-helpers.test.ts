import { describe, expect, it, test } from '@jest/globals'
import { createServer } from 'node:net'
import { demux, digestFor, freePort, untarFirstFile, type ImageInfo } from '../../../src/docker/client.js'
import { parseImageRef } from '../../../src/image/ref.js'

/** One frame of Docker's multiplexed stream: [stream, 0, 0, 0, size(4, BE)] + payload. */
function frame(stream: 1 | 2, payload: string | Buffer): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8')
  const h = Buffer.alloc(8)
  h[0] = stream
  h.writeUInt32BE(body.length, 4)
  return Buffer.concat([h, body])
}

describe('demux', () => {
  it('stdout and stderr frames, in order', () => {
    const buf = Buffer.concat([
      frame(1, 'Starting Chainlink Node 2.19.0\n'),
      frame(2, 'warn: x\n'),
      frame(1, 'Chainlink booted in 3.2s\n')
    ])
    expect(demux(buf)).toBe('Starting Chainlink Node 2.19.0\nwarn: x\nChainlink booted in 3.2s\n')
  })

  it('a frame longer than 255 bytes (the size is 4 bytes big-endian)', () => {
    const long = 'x'.repeat(70_000)
    expect(demux(Buffer.concat([frame(1, long), frame(2, 'end')]))).toBe(long + 'end')
  })

  it('a UTF-8 character split across two frames', () => {
    const euro = Buffer.from('€', 'utf8') // 3 bytes
    expect(
      demux(
        Buffer.concat([
          frame(1, Buffer.concat([Buffer.from('price '), euro.subarray(0, 1)])),
          frame(1, euro.subarray(1))
        ])
      )
    ).toBe('price €')
  })

  it('a truncated last frame keeps what arrived', () => {
    const buf = Buffer.concat([frame(1, 'complete\n'), frame(1, 'partial line').subarray(0, 8 + 7)])
    expect(demux(buf)).toBe('complete\npartial')
  })

  test.each([
    ['a TTY container (no framing)', Buffer.from('plain log line\n')],
    ['shorter than a header', Buffer.from('hi')],
    ['empty', Buffer.alloc(0)]
  ])('%s: the text as is', (_, buf) => expect(demux(buf)).toBe(buf.toString('utf8')))

  it('a string (some API paths already decode)', () => {
    expect(demux('already text' as unknown as Buffer)).toBe('already text')
  })
})

/** A ustar header + body for one entry. */
function tarEntry(name: string, body: string | Buffer, type = '0'): Buffer {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body)
  const h = Buffer.alloc(512)
  h.write(name, 0, 'utf8')
  h.write('0000644\0', 100)
  h.write('0000000\0', 108)
  h.write('0000000\0', 116)
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124)
  h.write('00000000000\0', 136)
  h.write('        ', 148)
  h.write(type, 156)
  h.write('ustar\0' + '00', 257)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512)
  return Buffer.concat([h, data, pad])
}
const END = Buffer.alloc(1024)

describe('untarFirstFile', () => {
  const TOML = "[Database]\nURL = 'postgresql://chainlink:hunter2@db/chainlink'\n"

  it('the file of a one-file archive (what the archive API returns for a path)', () => {
    expect(untarFirstFile(Buffer.concat([tarEntry('secrets.toml', TOML), END]))?.toString()).toBe(TOML)
  })

  it('a file of exactly 512 bytes, then another', () => {
    const a = 'a'.repeat(512)
    expect(untarFirstFile(Buffer.concat([tarEntry('a', a), tarEntry('b', 'b'), END]))?.toString()).toBe(a)
  })

  it('skips a directory, a PAX header and a GNU long name to the first regular file', () => {
    const pax = '30 path=/chainlink/config.toml\n'
    const tar = Buffer.concat([
      tarEntry('chainlink/', '', '5'),
      tarEntry('PaxHeaders/config.toml', pax, 'x'),
      tarEntry('././@LongLink', 'x'.repeat(600), 'L'),
      tarEntry('config.toml', '[WebServer]\nHTTPPort = 6688\n'),
      END
    ])
    expect(untarFirstFile(tar)?.toString()).toBe('[WebServer]\nHTTPPort = 6688\n')
  })

  it('an empty file is an empty buffer, not missing', () => {
    const got = untarFirstFile(Buffer.concat([tarEntry('empty.toml', ''), END]))
    expect(got).toBeDefined()
    expect(got!.length).toBe(0)
  })

  test.each([
    ['empty', Buffer.alloc(0)],
    ['only the end blocks', END],
    ['only a directory', Buffer.concat([tarEntry('chainlink/', '', '5'), END])],
    ['shorter than a header', Buffer.from('not a tar')]
  ])('%s: undefined', (_, tar) => expect(untarFirstFile(tar)).toBeUndefined())
})

describe('digestFor: the digest of the reference repository among RepoDigests', () => {
  const DH = 'sha256:' + '1'.repeat(64)
  const LOCAL = 'sha256:' + '2'.repeat(64)
  const ECR = 'sha256:' + '3'.repeat(64)
  const PG = 'sha256:' + '4'.repeat(64)
  const image = (...repoDigests: string[]): ImageInfo => ({
    id: 'sha256:' + 'f'.repeat(64),
    repoDigests,
    config: {} as ImageInfo['config']
  })
  const multi = image(
    `localhost:5000/smartcontract/chainlink@${LOCAL}`,
    `smartcontract/chainlink@${DH}`,
    `public.ecr.aws/chainlink/chainlink@${ECR}`
  )

  test.each([
    ['smartcontract/chainlink:2.19.0', multi, DH],
    ['docker.io/smartcontract/chainlink:2.19.0', multi, DH],
    ['localhost:5000/smartcontract/chainlink:2.19.0', multi, LOCAL],
    ['public.ecr.aws/chainlink/chainlink:2.19.0', multi, ECR],
    ['smartcontract/chainlink:2.19.0', image(`docker.io/smartcontract/chainlink@${DH}`), DH],
    ['postgres:15', image(`postgres@${PG}`), PG],
    ['postgres:15', image(`docker.io/library/postgres@${PG}`), PG],
    ['library/postgres:15', image(`postgres@${PG}`), PG]
  ])('%s', (ref, img, want) => expect(digestFor(img, parseImageRef(ref))).toBe(want))

  test.each([
    ['another registry only', 'registry.example.com/smartcontract/chainlink:2.19.0', multi],
    ['same path on another registry is not the same image', 'localhost:5001/smartcontract/chainlink:2.19.0', multi],
    ['a locally built image has no RepoDigests', 'smartcontract/chainlink:2.19.0', image()],
    ['a malformed entry', 'smartcontract/chainlink:2.19.0', image('smartcontract/chainlink')]
  ])('%s: undefined', (_, ref, img) => expect(digestFor(img, parseImageRef(ref))).toBeUndefined())
})

describe('freePort', () => {
  it('a port that can be bound on that address right away', async () => {
    const port = await freePort('127.0.0.1')
    expect(port).toBeGreaterThan(0)
    await new Promise<void>((resolve, reject) => {
      const s = createServer()
      s.on('error', reject)
      s.listen({ host: '127.0.0.1', port }, () => s.close(() => resolve()))
    })
  })

  it('never one of the ports to avoid', async () => {
    const avoid = new Set<number>()
    for (let i = 0; i < 20; i++) {
      const p = await freePort('127.0.0.1', avoid)
      expect(avoid.has(p)).toBe(false)
      avoid.add(p)
    }
    expect(avoid.size).toBe(20)
  })

  it("'' and 0.0.0.0 mean all interfaces", async () => {
    expect(await freePort('')).toBeGreaterThan(0)
    expect(await freePort('0.0.0.0')).toBeGreaterThan(0)
  })

  it('an address not on this host is an error, not a port', async () => {
    await expect(freePort('192.0.2.123')).rejects.toThrow(/EADDRNOTAVAIL/)
  })
})
