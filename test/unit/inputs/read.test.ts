import { describe, expect, it, test } from '@jest/globals'
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { InputError, readInputs } from '../../../src/inputs/read.js'
import type { Inputs } from '../../../src/inputs/types.js'

type Vals = Record<string, string>

/** What core.getInput returns: '' for an input that was not given. */
const getter = (vals: Vals) => (name: string) => vals[name] ?? ''

const IMAGE = 'smartcontract/chainlink:2.19.0'
const AGE_RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'

/** The runner's env: a workspace (image-file lives in it), no Docker TLS settings. */
const WS = mkdtempSync(join(tmpdir(), 'clr-inputs-ws-'))
const ENV = { GITHUB_WORKSPACE: WS }

function read(
  vals: Vals,
  mask: (s: string) => void = () => undefined,
  env: Record<string, string | undefined> = ENV
): Inputs {
  return readInputs(getter(vals), mask, env)
}

function inputError(vals: Vals, env: Record<string, string | undefined> = ENV): InputError {
  try {
    read(vals, undefined, env)
  } catch (e) {
    expect(e).toBeInstanceOf(InputError)
    return e as InputError
  }
  throw new Error(`expected an InputError for ${JSON.stringify(vals)}`)
}

describe('readInputs: defaults', () => {
  it('an upgrade with only an image gets the documented defaults', () => {
    const i = read({ image: IMAGE })
    expect(i).toMatchObject({
      operation: 'upgrade',
      container: 'chainlink',
      lockMode: 'auto',
      readyTimeoutMs: 600_000,
      stableForMs: 10_000,
      rollback: true,
      dbRollback: 'migrate-down',
      preferPrimary: false,
      backup: true,
      backupDir: '/var/lib/chainlink-rollout/backups',
      backupKeep: 7,
      stopNode: false,
      restoreOtherNode: false,
      dryRun: false,
      stateDir: '/var/lib/chainlink-rollout',
      lockTimeoutMs: 900_000
    })
    expect(i.image).toEqual({ registry: undefined, path: 'smartcontract/chainlink', tag: '2.19.0', digest: undefined })
    // unset: derived later from the container and the node's lease settings
    for (const k of [
      'standby',
      'imageFile',
      'databaseUrl',
      'healthUrl',
      'stopTimeoutMs',
      'standbyTimeoutMs',
      'backupRecipient',
      'backupFile',
      'dockerHost'
    ] as const) {
      expect(i[k]).toBeUndefined()
    }
    expect(i).toMatchObject({ allowedRepositories: [], backupSecretsPlain: false, dockerInsecureTcp: false })
  })

  it("action.yml's defaults, as the runner passes them, read the same as empty inputs", () => {
    const yml = parseYaml(readFileSync(new URL('../../../action.yml', import.meta.url), 'utf8')) as {
      inputs: Record<string, { default?: string }>
    }
    const fromYml: Vals = {}
    for (const [k, v] of Object.entries(yml.inputs)) fromYml[k] = String(v.default ?? '')
    expect(read({ ...fromYml, image: IMAGE })).toEqual(read({ image: IMAGE }))
  })

  it('operations other than upgrade need no image', () => {
    for (const operation of ['handoff', 'restart', 'status', 'backup', 'restore', 'repair']) {
      expect(read({ operation }).operation).toBe(operation)
    }
  })

  it('surrounding whitespace is ignored', () => {
    const i = read({ operation: ' status ', container: ' node-1 ', 'lock-mode': ' lease\n' })
    expect([i.operation, i.container, i.lockMode]).toEqual(['status', 'node-1', 'lease'])
  })
})

describe('readInputs: enums', () => {
  const cases: Array<[input: string, good: string[], bad: string[]]> = [
    [
      'operation',
      ['upgrade', 'handoff', 'restart', 'status', 'backup', 'restore', 'repair'],
      ['Upgrade', 'deploy', 'upgrade,status']
    ],
    ['lock-mode', ['auto', 'lease', 'advisorylock', 'dual'], ['none', 'advisory', 'LEASE']],
    ['db-rollback', ['migrate-down', 'restore'], ['rollback', 'migrate_down']]
  ]
  const key: Record<string, keyof Inputs> = {
    operation: 'operation',
    'lock-mode': 'lockMode',
    'db-rollback': 'dbRollback'
  }
  for (const [input, good, bad] of cases) {
    test.each(good)(`${input} accepts %s`, (v) => {
      expect(read({ image: IMAGE, [input]: v })[key[input]]).toBe(v)
    })
    test.each(bad)(`${input} rejects %s, naming the input and the allowed values`, (v) => {
      const e = inputError({ image: IMAGE, [input]: v })
      expect(e.input).toBe(input)
      expect(e.message).toMatch(new RegExp(`^Input '${input}' `))
      expect(e.message).toContain(`'${v}'`)
      expect(e.message).toContain(good.join(', '))
    })
  }
})

describe('readInputs: booleans', () => {
  const inputs: Array<[string, keyof Inputs]> = [
    ['rollback', 'rollback'],
    ['prefer-primary', 'preferPrimary'],
    ['backup', 'backup'],
    ['stop-node', 'stopNode'],
    ['dry-run', 'dryRun']
  ]
  const truthy = ['true', 'True', 'TRUE', 'yes', 'on', '1']
  const falsy = ['false', 'False', 'no', 'off', '0']
  for (const [input, key] of inputs) {
    test.each(truthy)(`${input}=%s is true`, (v) => expect(read({ image: IMAGE, [input]: v })[key]).toBe(true))
    test.each(falsy)(`${input}=%s is false`, (v) => expect(read({ image: IMAGE, [input]: v })[key]).toBe(false))
    test.each(['maybe', 'y', '2', 'truee'])(`${input}=%s is refused`, (v) => {
      const e = inputError({ image: IMAGE, [input]: v })
      expect(e.message).toBe(`Input '${input}' must be true or false; got '${v}'`)
    })
  }
})

describe('readInputs: durations', () => {
  const inputs: Array<[string, keyof Inputs, number]> = [
    // input, field, minimum in ms
    ['stop-timeout', 'stopTimeoutMs', 1000],
    ['standby-timeout', 'standbyTimeoutMs', 1000],
    ['ready-timeout', 'readyTimeoutMs', 1000],
    ['stable-for', 'stableForMs', 0],
    ['lock-timeout', 'lockTimeoutMs', 0]
  ]
  const good: Array<[string, number]> = [
    ['1500ms', 1500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['45', 45_000],
    ['2.5', 2500],
    ['1h', 3_600_000]
  ]
  for (const [input, key, min] of inputs) {
    test.each(good)(`${input}=%s is %d ms`, (v, ms) => expect(read({ image: IMAGE, [input]: v })[key]).toBe(ms))
    test.each(['fast', '-5s', '5 min', '1m30s', '10S', 's'])(`${input}=%s is refused with the accepted forms`, (v) => {
      const e = inputError({ image: IMAGE, [input]: v })
      expect(e.message).toBe(
        `Input '${input}' must be a duration like 1500ms, 30s, 5m or a number of seconds; got '${v}'`
      )
    })
    if (min > 0) {
      it(`${input} below its minimum of ${min} ms is refused`, () => {
        expect(inputError({ image: IMAGE, [input]: '999ms' }).message).toMatch(
          new RegExp(`^Input '${input}' must be at least ${min} ms`)
        )
        expect(read({ image: IMAGE, [input]: `${min}ms` })[key]).toBe(min)
      })
    } else {
      it(`${input}=0 is allowed`, () => expect(read({ image: IMAGE, [input]: '0' })[key]).toBe(0))
    }
  }
})

describe('readInputs: numbers, URLs, names, keys', () => {
  test.each([
    ['1', 1],
    ['7', 7],
    ['30', 30]
  ])('backup-keep=%s', (v, n) => expect(read({ image: IMAGE, 'backup-keep': v }).backupKeep).toBe(n))
  test.each(['0', '-1', '1.5', 'seven', '3 3'])('backup-keep=%s is refused', (v) => {
    expect(inputError({ image: IMAGE, 'backup-keep': v }).message).toMatch(
      /^Input 'backup-keep' must be a whole number of at least 1/
    )
  })

  test.each([
    ['http://127.0.0.1:6688', 'http://127.0.0.1:6688'],
    ['https://node.example.com/', 'https://node.example.com'],
    ['http://10.0.0.5:6688//', 'http://10.0.0.5:6688'],
    ['http://127.0.0.1:{port}', 'http://127.0.0.1:{port}'],
    ['http://{address}:6688/', 'http://{address}:6688'],
    ['https://{name}:6689', 'https://{name}:6689']
  ])('health-url=%s (trailing slashes dropped)', (v, want) =>
    expect(read({ image: IMAGE, 'health-url': v }).healthUrl).toBe(want)
  )
  test.each([
    ['localhost:6688', /^Input 'health-url' (is not a valid URL|must be http or https)/],
    ['not a url', /^Input 'health-url' is not a valid URL: 'not a url'/],
    ['ftp://node/', /^Input 'health-url' must be http or https; got 'ftp:'/],
    ['unix:///run/node.sock', /^Input 'health-url' must be http or https/],
    ['http://{ip}:6688', /^Input 'health-url' has an unknown placeholder \{ip\}.*\{address\}, \{port\} and \{name\}/],
    ['http://127.0.0.1:{port', /^Input 'health-url' is not a valid URL/]
  ])('health-url=%s is refused', (v, re) => expect(inputError({ image: IMAGE, 'health-url': v }).message).toMatch(re))

  test.each(['unix:///var/run/docker.sock', 'tcp://127.0.0.1:2375', 'https://docker.example.com:2376'])(
    'docker-host=%s',
    (v) => {
      expect(read({ image: IMAGE, 'docker-host': v }).dockerHost).toBe(v)
    }
  )
  test.each(['/var/run/docker.sock', 'ssh://host', 'tcp://'])('docker-host=%s is refused', (v) => {
    expect(inputError({ image: IMAGE, 'docker-host': v }).message).toMatch(
      /^Input 'docker-host' must look like unix:\/\/\/var\/run\/docker.sock/
    )
  })

  it('backup-recipient accepts an age public key', () => {
    expect(read({ image: IMAGE, 'backup-recipient': AGE_RECIPIENT }).backupRecipient).toBe(AGE_RECIPIENT)
  })
  test.each([
    ['an age identity (secret key)', 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ'],
    ['an ssh key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG'],
    ['a truncated key', AGE_RECIPIENT.slice(0, -1)],
    ['a key with a non-bech32 character', AGE_RECIPIENT.slice(0, -1) + 'b'],
    ['an uppercase key', AGE_RECIPIENT.toUpperCase()]
  ])('backup-recipient refuses %s', (_, v) => {
    const e = inputError({ image: IMAGE, 'backup-recipient': v })
    expect(e.message).toBe("Input 'backup-recipient' must be an age public key (age1...)")
  })

  test.each([
    ['chainlink', 'chainlink'],
    ['/chainlink', 'chainlink'],
    ['node_1.a-b', 'node_1.a-b'],
    ['9node', '9node']
  ])('container=%s is %s', (v, want) => expect(read({ image: IMAGE, container: v }).container).toBe(want))
  for (const input of ['container', 'standby']) {
    test.each(['-node', 'my node', 'node;rm', 'a/b', '_x', 'nöde'])(`${input}=%s is refused`, (v) => {
      const e = inputError({ image: IMAGE, [input]: v })
      expect(e.message).toBe(`Input '${input}' is not a valid container name: '${v}'`)
    })
  }
  it('standby names another container', () => {
    expect(read({ image: IMAGE, container: 'cl-a', standby: 'cl-b' })).toMatchObject({
      container: 'cl-a',
      standby: 'cl-b'
    })
  })
  test.each([
    [{ standby: 'chainlink' }],
    [{ container: 'cl-a', standby: 'cl-a' }],
    [{ container: 'cl-a', standby: '/cl-a' }]
  ])('standby equal to container is refused: %j', (vals) => {
    const e = inputError({ image: IMAGE, ...vals })
    expect(e.input).toBe('standby')
    expect(e.message).toMatch(/^Input 'standby' must name a different container than 'container'/)
  })

  test.each(['backup-dir', 'state-dir', 'backup-file', 'image-file'])('%s refuses a NUL byte', (input) => {
    const vals: Vals = input === 'image-file' ? { operation: 'status' } : { image: IMAGE }
    expect(inputError({ ...vals, [input]: 'a\0b' }).message).toBe(`Input '${input}' contains a NUL byte`)
  })
})

describe('readInputs: image and image-file', () => {
  const D = 'sha256:' + 'ab'.repeat(32)
  test.each([
    [`smartcontract/chainlink:2.19.0@${D}`, { path: 'smartcontract/chainlink', tag: '2.19.0', digest: D }],
    [
      'localhost:5000/smartcontract/chainlink:2.19.0',
      { registry: 'localhost:5000', path: 'smartcontract/chainlink', tag: '2.19.0' }
    ]
  ])('image=%s', (v, want) => expect(read({ image: v }).image).toMatchObject(want))
  test.each([
    'SmartContract/chainlink:2.19.0',
    'smartcontract/chainlink:2.19.0@sha256:abc',
    'smartcontract/chainlink 2.19.0',
    'smartcontract/chainlink:'
  ])('image=%s is refused', (v) => {
    const e = inputError({ image: v })
    expect(e.input).toBe('image')
    expect(e.message).toMatch(/^Input 'image' is not a valid image reference: /)
  })
  it('upgrade without image or image-file is refused', () => {
    const e = inputError({})
    expect(e.input).toBe('image')
    expect(e.message).toContain("is required for operation 'upgrade'")
    expect(e.message).toContain('image-file')
  })
  it('upgrade with image-file only is accepted', () => {
    const i = read({ 'image-file': 'deploy/node.env' })
    expect(i.imageFile).toBe(join(WS, 'deploy/node.env'))
    expect(i.image).toBeUndefined()
  })
  it('image and image-file together are refused', () => {
    const e = inputError({ image: IMAGE, 'image-file': 'deploy/node.env' })
    expect(e.input).toBe('image-file')
    expect(e.message).toMatch(/^Input 'image-file' cannot be combined with 'image'/)
  })
})

describe('readInputs: database-url is masked before anything can throw', () => {
  const URL1 = 'postgres://chainlink:s3cr%40t%2Fpw@db.internal:5432/chainlink?sslmode=require'

  function masked(vals: Vals): { calls: string[]; error?: Error } {
    const calls: string[] = []
    try {
      read(vals, (s) => calls.push(s))
      return { calls }
    } catch (e) {
      return { calls, error: e as Error }
    }
  }

  it('masks the URL and its password, raw and percent-decoded', () => {
    const { calls, error } = masked({ image: IMAGE, 'database-url': URL1 })
    expect(error).toBeUndefined()
    expect(calls).toEqual(expect.arrayContaining([URL1, 's3cr%40t%2Fpw', 's3cr@t/pw']))
  })

  it('keeps the URL as given', () => {
    expect(read({ image: IMAGE, 'database-url': URL1 }).databaseUrl).toBe(URL1)
  })

  test.each([
    [
      'a mysql URL',
      'mysql://root:hunter2@db/chainlink',
      'hunter2',
      /^Input 'database-url' must be a postgres:\/\/ or postgresql:\/\/ URL$/
    ],
    [
      'a URL with an unencoded / in the password',
      'postgresql://u:hun/ter2@db/chainlink',
      'hun/ter2',
      /^Input 'database-url' is not a valid URL$/
    ],
    ['a key/value DSN', 'host=db user=u password=hunter2', undefined, /^Input 'database-url' must be a postgres/]
  ])('%s: masked, then refused without echoing it', (_, url, password, re) => {
    const { calls, error } = masked({ image: IMAGE, 'database-url': url })
    expect(error).toBeInstanceOf(InputError)
    expect(error!.message).toMatch(re)
    expect(error!.message).not.toContain(url)
    if (password) expect(error!.message).not.toContain(password)
    expect(calls).toContain(url)
    if (password) expect(calls).toContain(password)
  })

  test.each([
    ['container', 'bad name'],
    ['standby', 'chainlink'],
    ['image', 'Bad/Ref'],
    ['health-url', 'ftp://x'],
    ['ready-timeout', 'soon'],
    ['backup-keep', '0']
  ])('masked even when %s is malformed', (input, value) => {
    const { calls, error } = masked({ image: IMAGE, 'database-url': URL1, [input]: value })
    expect((error as InputError).input).toBe(input)
    expect(calls).toEqual(expect.arrayContaining([URL1, 's3cr@t/pw']))
  })

  // Regression (was a bug, fixed): readInputs validates 'operation' before it masks 'database-url', so a malformed
  // operation throws with the URL and its password never registered as secrets. The code's own
  // comment says "The DB URL is masked first of all".
  test('masked even when operation is malformed', () => {
    const { calls, error } = masked({ image: IMAGE, 'database-url': URL1, operation: 'deploy' })
    expect((error as InputError).input).toBe('operation')
    expect(calls).toEqual(expect.arrayContaining([URL1, 's3cr@t/pw']))
  })
})

describe('readInputs: paths stay where they belong', () => {
  const backupDir = mkdtempSync(join(tmpdir(), 'clr-inputs-backups-'))
  const outside = mkdtempSync(join(tmpdir(), 'clr-inputs-outside-'))
  writeFileSync(join(outside, '.password'), 'keystore-password-not-to-print\n')
  mkdirSync(join(WS, 'deploy'), { recursive: true })
  writeFileSync(join(WS, 'deploy', 'node.env'), 'CHAINLINK_IMAGE=smartcontract/chainlink:2.19.0\n')
  symlinkSync(join(outside, '.password'), join(WS, 'deploy', 'link.env'))
  symlinkSync(outside, join(WS, 'out'))
  symlinkSync(outside, join(backupDir, 'elsewhere'))

  it('image-file: relative to the workspace, or absolute inside it', () => {
    expect(read({ 'image-file': 'deploy/node.env' }).imageFile).toBe(join(WS, 'deploy/node.env'))
    expect(read({ 'image-file': join(WS, 'deploy/node.env') }).imageFile).toBe(join(WS, 'deploy/node.env'))
  })
  test.each([
    ['../outside.env', /^Input 'image-file' must not contain '\.\.'/],
    ['deploy/../../etc/passwd', /^Input 'image-file' must not contain '\.\.'/],
    ['/etc/passwd', /^Input 'image-file' must be inside the workspace/],
    ['deploy/link.env', /^Input 'image-file' leads outside the workspace .* through a symbolic link/],
    ['out/.password', /^Input 'image-file' leads outside the workspace .* through a symbolic link/]
  ])('image-file=%s is refused', (v, re) => {
    const e = inputError({ 'image-file': v })
    expect(e.message).toMatch(re)
    expect(e.message).not.toContain('keystore-password-not-to-print')
  })
  it('without GITHUB_WORKSPACE the working directory is the workspace', () => {
    expect(inputError({ 'image-file': '/etc/passwd' }, {}).message).toContain(process.cwd())
  })

  it('backup-file: relative to backup-dir, or absolute inside it', () => {
    const vals = { operation: 'restore', 'backup-dir': backupDir }
    expect(read({ ...vals, 'backup-file': 'a.dump' }).backupFile).toBe(join(backupDir, 'a.dump'))
    expect(read({ ...vals, 'backup-file': join(backupDir, 'a.dump') }).backupFile).toBe(join(backupDir, 'a.dump'))
  })
  test.each([
    ['../x.dump', /^Input 'backup-file' must not contain '\.\.'/],
    ['/etc/shadow', /^Input 'backup-file' must be inside 'backup-dir'/],
    ['elsewhere/x.dump', /^Input 'backup-file' leads outside 'backup-dir' .* through a symbolic link/]
  ])('backup-file=%s is refused', (v, re) => {
    expect(inputError({ operation: 'restore', 'backup-dir': backupDir, 'backup-file': v }).message).toMatch(re)
  })
})

describe('readInputs: allowed-repositories', () => {
  it('a comma or newline separated list', () => {
    expect(
      read({ image: IMAGE, 'allowed-repositories': 'ghcr.io/acme/*,\n public.ecr.aws/chainlink/chainlink\n\n' })
        .allowedRepositories
    ).toEqual(['ghcr.io/acme/*', 'public.ecr.aws/chainlink/chainlink'])
  })
  test.each([
    ['smartcontract/chainlink:2.19.0', /names a tag/],
    [`smartcontract/chainlink@sha256:${'a'.repeat(64)}`, /names a digest/],
    ['smart contract/chainlink', /is not a repository/]
  ])('%s is refused', (v, re) => {
    const e = inputError({ image: IMAGE, 'allowed-repositories': v })
    expect(e.input).toBe('allowed-repositories')
    expect(e.message).toMatch(re)
  })
})

describe('readInputs: backup-secrets-plain and docker-insecure-tcp are booleans', () => {
  test.each(['backup-secrets-plain', 'docker-insecure-tcp'])('%s', (input) => {
    expect(inputError({ image: IMAGE, [input]: 'maybe' }).input).toBe(input)
  })
  it('backup-secrets-plain: true', () =>
    expect(read({ image: IMAGE, 'backup-secrets-plain': 'true' }).backupSecretsPlain).toBe(true))
})

describe('readInputs: remote Docker is encrypted', () => {
  const certs = mkdtempSync(join(tmpdir(), 'clr-inputs-certs-'))
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(certs, f), 'x')

  test.each(['tcp://10.0.0.2:2375', 'http://docker.example.com:2375', 'tcp://[fd00::2]:2375'])(
    'plain TCP to %s is refused without docker-insecure-tcp',
    (v) => {
      const e = inputError({ image: IMAGE, 'docker-host': v })
      expect(e.input).toBe('docker-host')
      expect(e.message).toMatch(/plain TCP to a remote Docker Engine.*DOCKER_TLS_VERIFY.*docker-insecure-tcp: true/)
    }
  )
  it('DOCKER_HOST from the env is held to the same rule', () => {
    const e = inputError({ image: IMAGE }, { ...ENV, DOCKER_HOST: 'tcp://10.0.0.2:2375' })
    expect(e.message).toMatch(/\(from DOCKER_HOST\) is plain TCP/)
  })
  test.each(['tcp://127.0.0.1:2375', 'tcp://localhost:2375', 'tcp://[::1]:2375'])('loopback %s is fine', (v) =>
    expect(read({ image: IMAGE, 'docker-host': v }).dockerHost).toBe(v)
  )
  it('docker-insecure-tcp: true accepts plain TCP', () =>
    expect(read({ image: IMAGE, 'docker-host': 'tcp://10.0.0.2:2375', 'docker-insecure-tcp': 'true' }).dockerHost).toBe(
      'tcp://10.0.0.2:2375'
    ))
  it('DOCKER_TLS_VERIFY with the three files in DOCKER_CERT_PATH', () => {
    const env = { ...ENV, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs }
    expect(read({ image: IMAGE, 'docker-host': 'tcp://10.0.0.2:2376' }, undefined, env).dockerHost).toBe(
      'tcp://10.0.0.2:2376'
    )
  })
  it('DOCKER_TLS_VERIFY without the files names the missing one', () => {
    const env = { ...ENV, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: join(certs, 'none') }
    const e = inputError({ image: IMAGE, 'docker-host': 'tcp://10.0.0.2:2376' }, env)
    expect(e.input).toBe('docker-host')
    expect(e.message).toContain(join(certs, 'none', 'ca.pem'))
  })
})
describe('readInputs: operator safeguards', () => {
  it('are off by default', () => {
    const i = read({ image: IMAGE })
    expect(i.retryQuarantined).toBe(false)
    expect(i.window).toEqual([])
  })

  it('reads a window and the retry of a quarantined digest', () => {
    const i = read({ image: IMAGE, window: 'Mon-Fri 08:00-18:00 Europe/Berlin', 'retry-quarantined': 'true' })
    expect(i.retryQuarantined).toBe(true)
    expect(i.window.map((w) => w.zone)).toEqual(['Europe/Berlin'])
  })

  test.each([
    [{ window: 'Mon-Fri 08:00-18:00 Nowhere/City' }, /^Input 'window' unknown time zone 'Nowhere\/City'/],
    [{ window: 'weekdays 8-18' }, /^Input 'window' unknown day 'weekdays'/],
    [{ 'retry-quarantined': 'maybe' }, /^Input 'retry-quarantined' must be true or false/]
  ])('refuses %p naming the input', (vals, message) => {
    expect(inputError({ image: IMAGE, ...vals }).message).toMatch(message)
  })
})

describe('readInputs: webhook-url', () => {
  it.each([
    ['not a url', /^Input 'webhook-url' is not a valid URL/],
    ['ftp://hooks.example.com/x', /^Input 'webhook-url' must be http or https; got 'ftp:'/],
    ['file:///etc/passwd', /^Input 'webhook-url' must be http or https/]
  ])('refuses %p, naming the input', (v, message) => {
    expect(inputError({ image: IMAGE, 'webhook-url': v }).message).toMatch(message)
  })

  it('is a secret: masked before anything is validated, and never quoted in an error', () => {
    const masked: string[] = []
    const url = 'https://hooks.example.com/services/T0/B0/tok3n-in-the-path'
    expect(read({ image: IMAGE, 'webhook-url': url }, (s) => masked.push(s)).webhookUrl).toBe(url)
    expect(masked).toContain(url)
    const bad = 'gopher://user:tok3n@hooks.example.com/'
    expect(inputError({ image: IMAGE, 'webhook-url': bad }).message).not.toContain('tok3n')
  })

  it('is optional', () => {
    expect(read({ image: IMAGE }).webhookUrl).toBeUndefined()
  })
})
