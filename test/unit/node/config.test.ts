import { describe, expect, it, test } from '@jest/globals'
import {
  configFilesFromArgs,
  credentialFilesFromArgs,
  defaultLockMode,
  nodeSecrets,
  nodeVersionOf,
  readNodeConfig
} from '../../../src/node/config.js'

const env = (o: Record<string, string> = {}) => new Map(Object.entries(o))
/** The container's filesystem as the action reads it: undefined for a missing file. */
const files =
  (fs: Record<string, string> = {}) =>
  async (path: string) =>
    fs[path]

const V2_ARGS = [
  'chainlink',
  'node',
  '-config',
  '/chainlink/config.toml',
  '-secrets',
  '/chainlink/secrets.toml',
  'start',
  '-a',
  '/chainlink/.api'
]

describe('readNodeConfig: v1 env', () => {
  it('nothing configured: the node defaults, lock mode left to the version', async () => {
    const c = await readNodeConfig(env(), ['chainlink', 'local', 'node'], files())
    expect(c).toMatchObject({
      lockMode: undefined,
      leaseDurationMs: 10_000,
      leaseRefreshMs: 1_000,
      advisoryLockId: 1027321974924625846n,
      advisoryCheckMs: 1_000,
      httpPort: 6688,
      shutdownGraceMs: 5_000,
      toml: false,
      databaseUrl: undefined
    })
    expect(c.lockModeSource).toMatch(/default/)
  })

  test.each(['lease', 'advisorylock', 'dual', 'none'])('DATABASE_LOCKING_MODE=%s', async (m) => {
    const c = await readNodeConfig(env({ DATABASE_LOCKING_MODE: m }), [], files())
    expect(c.lockMode).toBe(m)
    expect(c.lockModeSource).toContain('DATABASE_LOCKING_MODE')
  })

  test.each(['Lease', 'advisory', 'both', 'LEASE'])(
    'DATABASE_LOCKING_MODE=%j is one the node refuses: an error',
    async (m) => {
      await expect(readNodeConfig(env({ DATABASE_LOCKING_MODE: m }), [], files())).rejects.toThrow(
        `DATABASE_LOCKING_MODE '${m}'`
      )
    }
  )

  it('lease, advisory, grace and port settings', async () => {
    const c = await readNodeConfig(
      env({
        LEASE_LOCK_DURATION: '30s',
        LEASE_LOCK_REFRESH_INTERVAL: '2.5s',
        ADVISORY_LOCK_ID: '9223372036854775807',
        ADVISORY_LOCK_CHECK_INTERVAL: '500ms',
        CHAINLINK_PORT: '6699',
        SHUTDOWN_GRACE_PERIOD: '1m30s'
      }),
      [],
      files()
    )
    expect(c).toMatchObject({
      leaseDurationMs: 30_000,
      leaseRefreshMs: 2_500,
      advisoryLockId: 9223372036854775807n,
      advisoryCheckMs: 500,
      httpPort: 6699,
      shutdownGraceMs: 90_000
    })
  })

  test.each([
    ['LEASE_LOCK_DURATION', 'ten seconds'],
    ['LEASE_LOCK_REFRESH_INTERVAL', '1x'],
    ['ADVISORY_LOCK_CHECK_INTERVAL', 'often']
  ])('%s=%j is not a duration: an error naming the setting', async (k, v) => {
    await expect(readNodeConfig(env({ [k]: v }), [], files())).rejects.toThrow(
      new RegExp(`${k}.*'${v}' is not a duration`)
    )
  })
})

describe('readNodeConfig: v2 TOML', () => {
  const SECRETS = `[Database]\nURL = 'postgresql://chainlink:hunter2@db:5432/chainlink'\n[Password]\nKeystore = 'keystorepw12345'\n`

  it('TOML in use: lease by default, with the v2 defaults', async () => {
    const c = await readNodeConfig(
      env(),
      V2_ARGS,
      files({ '/chainlink/config.toml': '[Log]\nLevel = "info"\n', '/chainlink/secrets.toml': SECRETS })
    )
    expect(c).toMatchObject({
      toml: true,
      lockMode: 'lease',
      leaseDurationMs: 10_000,
      leaseRefreshMs: 1_000,
      httpPort: 6688,
      shutdownGraceMs: 5_000
    })
    expect(c.configFiles).toEqual(['/chainlink/config.toml'])
    expect(c.secretsFiles).toEqual(['/chainlink/secrets.toml'])
  })

  test.each([
    ['Enabled = false', 'none'],
    ['Enabled = true', 'lease'],
    ["Enabled = true\nMode = 'dual'", 'dual'],
    ["Mode = 'advisorylock'", 'advisorylock']
  ])('[Database.Lock] %s -> %s', async (block, mode) => {
    const c = await readNodeConfig(
      env(),
      ['-config', '/c.toml', 'node', 'start'],
      files({ '/c.toml': `[Database.Lock]\n${block}\n` })
    )
    expect(c.lockMode).toBe(mode)
  })

  it('LeaseDuration, LeaseRefreshInterval, HTTPPort and ShutdownGracePeriod', async () => {
    const toml = `ShutdownGracePeriod = '20s'\n[Database.Lock]\nLeaseDuration = '1m'\nLeaseRefreshInterval = '5s'\n[WebServer]\nHTTPPort = 6690\n`
    const c = await readNodeConfig(env(), ['node', '-config', '/c.toml', 'start'], files({ '/c.toml': toml }))
    expect(c).toMatchObject({ leaseDurationMs: 60_000, leaseRefreshMs: 5_000, httpPort: 6690, shutdownGraceMs: 20_000 })
  })

  it('-config files merge in order, CL_CONFIG last', async () => {
    const fs = files({
      '/a.toml': `ShutdownGracePeriod = '7s'\n[Database.Lock]\nLeaseDuration = '20s'\nLeaseRefreshInterval = '2s'\n[WebServer]\nHTTPPort = 7000\n`,
      '/b.toml': `[Database.Lock]\nLeaseDuration = '30s'\n`
    })
    const both = await readNodeConfig(env(), ['node', '-config', '/a.toml', '--config=/b.toml', 'start'], fs)
    expect(both).toMatchObject({
      leaseDurationMs: 30_000,
      leaseRefreshMs: 2_000,
      httpPort: 7000,
      shutdownGraceMs: 7_000
    })
    const reversed = await readNodeConfig(env(), ['node', '-c', '/b.toml', '-c', '/a.toml', 'start'], fs)
    expect(reversed.leaseDurationMs).toBe(20_000)
    const inline = await readNodeConfig(
      env({ CL_CONFIG: `[Database.Lock]\nLeaseRefreshInterval = '3s'\nEnabled = false\n` }),
      ['node', '-config', '/a.toml', '-config', '/b.toml', 'start'],
      fs
    )
    expect(inline).toMatchObject({ leaseDurationMs: 30_000, leaseRefreshMs: 3_000, lockMode: 'none', httpPort: 7000 })
  })

  it('CL_CONFIG alone makes it a TOML node', async () => {
    const c = await readNodeConfig(
      env({ CL_CONFIG: `[Database.Lock]\nLeaseDuration = '15s'\n` }),
      ['node', 'start'],
      files()
    )
    expect(c).toMatchObject({ toml: true, lockMode: 'lease', leaseDurationMs: 15_000 })
  })

  it('v1 lock env vars do not apply to a TOML node', async () => {
    const c = await readNodeConfig(
      env({ DATABASE_LOCKING_MODE: 'advisorylock', LEASE_LOCK_DURATION: '99s' }),
      ['-config', '/c.toml', 'node', 'start'],
      files({ '/c.toml': '' })
    )
    expect(c).toMatchObject({ lockMode: 'lease', leaseDurationMs: 10_000 })
  })

  it('an unreadable config file is an error naming it', async () => {
    await expect(readNodeConfig(env(), ['node', '-config', '/missing.toml', 'start'], files())).rejects.toThrow(
      /config file \/missing\.toml .*cannot be read/
    )
  })

  it('a malformed config file is an error naming it, on one line', async () => {
    const err = await readNodeConfig(
      env(),
      ['node', '-config', '/c.toml', 'start'],
      files({ '/c.toml': '[Database.Lock\nEnabled = false\n' })
    ).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(/config file \/c\.toml is not valid TOML/)
    expect((err as Error).message).not.toContain('\n')
  })

  test.each([
    ['LeaseDuration', "LeaseDuration = 'long'"],
    ['LeaseRefreshInterval', "LeaseRefreshInterval = '1 second'"]
  ])('[Database.Lock] %s that is not a duration is an error naming it', async (name, line) => {
    await expect(
      readNodeConfig(env(), ['-config', '/c.toml'], files({ '/c.toml': `[Database.Lock]\n${line}\n` }))
    ).rejects.toThrow(`Database.Lock.${name}`)
  })

  // Regression (was a bug, fixed): a malformed CL_CONFIG surfaces as smol-toml's raw multi-line error ("Invalid
  // TOML document: ...", with the document quoted), never saying it came from CL_CONFIG, unlike
  // a malformed -config file.
  test('a malformed CL_CONFIG is an error naming CL_CONFIG, on one line', async () => {
    const err = await readNodeConfig(
      env({ CL_CONFIG: '[Database.Lock\nEnabled = false' }),
      ['node', 'start'],
      files()
    ).catch((e: Error) => e)
    expect((err as Error).message).toContain('CL_CONFIG')
    expect((err as Error).message).not.toContain('\n')
  })
})

describe('readNodeConfig: the database URL', () => {
  const FILE_URL = 'postgresql://chainlink:fromfile@db:5432/chainlink'
  const SECRETS = `[Database]\nURL = '${FILE_URL}'\n`
  const fs = files({ '/chainlink/secrets.toml': SECRETS, '/chainlink/config.toml': '' })
  test.each([
    [
      'CL_DATABASE_URL beats DATABASE_URL and the secrets file',
      { CL_DATABASE_URL: 'postgres://a:1@h/cl', DATABASE_URL: 'postgres://b:2@h/cl' },
      'postgres://a:1@h/cl',
      'container env CL_DATABASE_URL'
    ],
    [
      'DATABASE_URL beats the secrets file',
      { DATABASE_URL: 'postgres://b:2@h/cl' },
      'postgres://b:2@h/cl',
      'container env DATABASE_URL'
    ],
    [
      'an empty CL_DATABASE_URL does not count',
      { CL_DATABASE_URL: '', DATABASE_URL: 'postgres://b:2@h/cl' },
      'postgres://b:2@h/cl',
      'container env DATABASE_URL'
    ],
    ['the secrets TOML [Database] URL', {}, FILE_URL, 'secrets file /chainlink/secrets.toml']
  ])('%s', async (_, e, url, source) => {
    const c = await readNodeConfig(env(e), V2_ARGS, fs)
    expect(c.databaseUrl).toBe(url)
    expect(c.databaseUrlSource).toBe(source)
    expect(c.databaseUrlSource).not.toContain('postgres')
  })

  it('the secrets file is found by -s and --secrets= too', async () => {
    for (const flag of [['-s', '/chainlink/secrets.toml'], ['--secrets=/chainlink/secrets.toml']]) {
      expect((await readNodeConfig(env(), ['node', ...flag, 'start'], fs)).databaseUrl).toBe(FILE_URL)
    }
  })

  it('a secrets file without [Database] URL gives no URL', async () => {
    const c = await readNodeConfig(
      env(),
      ['node', '-secrets', '/s.toml', 'start'],
      files({ '/s.toml': "[Password]\nKeystore = 'x'\n" })
    )
    expect(c.databaseUrl).toBeUndefined()
  })

  test.each([
    [
      'an unterminated string',
      `[Database]\nURL = 'postgresql://chainlink:hunter2@db/chainlink\n[Password]\nKeystore = 'keystorepw12345'\n`
    ],
    [
      'a bad table header',
      `[Database\nURL = 'postgresql://chainlink:hunter2@db/chainlink'\n[Password]\nKeystore = 'keystorepw12345'\n`
    ],
    ['a bare value', `[Database]\nURL = postgresql://chainlink:hunter2@db/chainlink\nKeystore = keystorepw12345\n`]
  ])('a malformed secrets file (%s) is an error that quotes none of it', async (_, text) => {
    const err = await readNodeConfig(
      env(),
      ['node', '-secrets', '/chainlink/secrets.toml', 'start'],
      files({ '/chainlink/secrets.toml': text })
    ).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    const msg = (err as Error).message
    expect(msg).toContain('/chainlink/secrets.toml')
    for (const secret of ['hunter2', 'keystorepw12345', 'postgresql://', 'Keystore', 'URL ='])
      expect(msg).not.toContain(secret)
  })

  it('a malformed secrets file is not read when the env already gives the URL', async () => {
    const c = await readNodeConfig(
      env({ CL_DATABASE_URL: 'postgres://a:1@h/cl' }),
      ['node', '-secrets', '/s.toml', 'start'],
      files({ '/s.toml': '[[[' })
    )
    expect(c.databaseUrl).toBe('postgres://a:1@h/cl')
  })
})

describe('configFilesFromArgs', () => {
  test.each<[string[], string[], string[]]>([
    [['node', '-config', 'a.toml', '-secrets', 'b.toml', 'start'], ['a.toml'], ['b.toml']],
    [
      ['-config', '/chainlink/config.toml', '-secrets', '/chainlink/secrets.toml', 'node', 'start'],
      ['/chainlink/config.toml'],
      ['/chainlink/secrets.toml']
    ],
    [['node', '--config=a.toml', '--secrets=b.toml', 'start'], ['a.toml'], ['b.toml']],
    [['node', '-c', 'a.toml', '-c', 'b.toml', '-s', 's.toml', 'start'], ['a.toml', 'b.toml'], ['s.toml']],
    [['node', '--config', 'a.toml', '--secrets', 's.toml'], ['a.toml'], ['s.toml']],
    [['node', '-config=a.toml', '-c=b.toml', '-s=s.toml'], ['a.toml', 'b.toml'], ['s.toml']],
    [['local', 'node', '-p', '/chainlink/.password', '-a', '/chainlink/.api'], [], []],
    [['node', 'start', '-config'], [], []],
    [['node', '-configs', 'x', '-cc', 'y', 'config', 'z'], [], []],
    [[], [], []]
  ])('%j', (args, config, secrets) => {
    expect(configFilesFromArgs(args)).toEqual({ config, secrets })
  })
})

describe('defaultLockMode', () => {
  test.each<[string | undefined, boolean, string]>([
    ['1.0.0', false, 'advisorylock'],
    ['1.1.0', false, 'advisorylock'],
    ['1.2.0', false, 'advisorylock'],
    ['1.3.0', false, 'dual'],
    ['1.9.0', false, 'dual'],
    ['1.13.3', false, 'dual'],
    ['2.0.0', false, 'lease'],
    ['2.19.0', false, 'lease'],
    ['10.0.0', false, 'lease'],
    ['1.2.0', true, 'lease'],
    ['1.13.0', true, 'lease'],
    [undefined, false, 'lease']
  ])('version %s, toml %s -> %s', (version, toml, mode) => expect(defaultLockMode(version, toml)).toBe(mode))
})

describe('credentialFilesFromArgs: the API and password files of node start', () => {
  test.each([
    [
      ['node', 'start', '-a', '/chainlink/.api', '-p', '/chainlink/.password'],
      ['/chainlink/.api', '/chainlink/.password']
    ],
    [
      ['local', 'n', '--api=/c/.api', '--password', '/c/.pw', '--vrfpassword', '/c/.vrf'],
      ['/c/.api', '/c/.pw', '/c/.vrf']
    ],
    [['node', '-config', '/c/config.toml', 'start'], []]
  ])('%j', (args, want) => expect(credentialFilesFromArgs(args)).toEqual(want))
})

describe('nodeSecrets: everything secret a node container holds', () => {
  const files: Record<string, string> = {
    '/chainlink/config.toml': "[[EVM.Nodes]]\nWSURL = 'wss://rpc.example.com/ws?apikey=cfg-api-key-1'\n",
    '/chainlink/secrets.toml': "[Password]\nKeystore = 'file-keystore-pass-2'\n",
    '/chainlink/.api': 'admin@example.com\nfile-api-pass-3\n',
    '/chainlink/.password': 'file-password-4\n'
  }
  test('env, -config, -secrets, -a and -p files', async () => {
    const got = await nodeSecrets(
      new Map([['CL_PASSWORD_VRF', 'env-vrf-pass-5']]),
      [
        'chainlink',
        'node',
        '-config',
        '/chainlink/config.toml',
        '-secrets',
        '/chainlink/secrets.toml',
        'start',
        '-a',
        '/chainlink/.api',
        '-p',
        '/chainlink/.password',
        '--vrfpassword',
        '/chainlink/missing'
      ],
      async (p) => files[p]
    )
    expect(got).toEqual(
      expect.arrayContaining([
        'cfg-api-key-1',
        'file-keystore-pass-2',
        'admin@example.com',
        'file-api-pass-3',
        'file-password-4',
        'env-vrf-pass-5'
      ])
    )
  })
})

describe('readNodeConfig: a 2.x node reads TOML only (docs/node-facts.md §11.9)', () => {
  const V1_ENV = {
    DATABASE_URL: 'postgres://u:p@db/v1',
    DATABASE_LOCKING_MODE: 'dual',
    LEASE_LOCK_DURATION: '30s',
    LEASE_LOCK_REFRESH_INTERVAL: '3s',
    ADVISORY_LOCK_ID: '42',
    ADVISORY_LOCK_CHECK_INTERVAL: '7s',
    CHAINLINK_PORT: '7777',
    SHUTDOWN_GRACE_PERIOD: '9s'
  }

  it('2.x without TOML config: the v1 variables are ignored, the TOML defaults apply', async () => {
    const c = await readNodeConfig(env(V1_ENV), ['chainlink', 'node', 'start'], files(), '2.19.0')
    expect(c).toMatchObject({
      databaseUrl: undefined,
      lockMode: 'lease',
      leaseDurationMs: 10_000,
      leaseRefreshMs: 1_000,
      advisoryLockId: 1027321974924625846n,
      advisoryCheckMs: 1_000,
      httpPort: 6688,
      shutdownGraceMs: 5_000,
      toml: true
    })
    expect(c.lockModeSource).toMatch(/v2 TOML default/)
  })

  it('2.x: CL_DATABASE_URL is read, DATABASE_URL is not', async () => {
    const c = await readNodeConfig(env({ ...V1_ENV, CL_DATABASE_URL: 'postgres://u:p@db/v2' }), [], files(), '2.0.0')
    expect(c.databaseUrl).toBe('postgres://u:p@db/v2')
    expect(c.databaseUrlSource).toBe('container env CL_DATABASE_URL')
  })

  it('2.x with TOML: its settings, whatever the v1 variables say', async () => {
    const toml = `[Database.Lock]\nLeaseDuration = '20s'\nLeaseRefreshInterval = '2s'\n[WebServer]\nHTTPPort = 6689\n`
    const c = await readNodeConfig(
      env(V1_ENV),
      ['node', '-config', '/c.toml', 'start'],
      files({ '/c.toml': toml }),
      '2.19.0'
    )
    expect(c).toMatchObject({ leaseDurationMs: 20_000, leaseRefreshMs: 2_000, httpPort: 6689, lockMode: 'lease' })
  })

  it('1.x: the v1 variables apply', async () => {
    const c = await readNodeConfig(env(V1_ENV), ['chainlink', 'local', 'node'], files(), '1.13.3')
    expect(c).toMatchObject({
      databaseUrl: 'postgres://u:p@db/v1',
      lockMode: 'dual',
      leaseDurationMs: 30_000,
      leaseRefreshMs: 3_000,
      advisoryLockId: 42n,
      advisoryCheckMs: 7_000,
      httpPort: 7777,
      shutdownGraceMs: 9_000,
      toml: false
    })
  })
})

describe('nodeVersionOf: the version an image says it is', () => {
  test.each<[string, Record<string, string>, string[], string, string | undefined]>([
    ['the OCI label', { 'org.opencontainers.image.version': '2.19.0' }, [], 'x/chainlink:latest', '2.19.0'],
    ['CHAINLINK_VERSION of the image', {}, ['CHAINLINK_VERSION=1.13.3'], 'x/chainlink:latest', '1.13.3'],
    ['the tag', {}, [], 'smartcontract/chainlink:2.18.0-beta1', '2.18.0-beta1'],
    ['a v-prefixed tag', {}, [], 'registry:5000/smartcontract/chainlink:v2.7.1@sha256:' + 'a'.repeat(64), '2.7.1'],
    ['nothing to tell', {}, [], 'x/chainlink:latest', undefined]
  ])('%s', (_, labels, envList, image, want) => {
    expect(nodeVersionOf({ Labels: labels, Env: envList, Image: image })).toBe(want)
  })
})
