import { describe, expect, test } from '@jest/globals'
import { parse as parseToml } from 'smol-toml'
import {
  configTomlSecrets,
  credentialFileSecrets,
  envSecrets,
  isSecretEnvKey,
  maskDatabaseUrl,
  redactUrlCredentials,
  Redactor,
  secretsTomlSecrets,
  urlCredentials
} from '../../../src/trust/secrets.js'

function masks(url: string): string[] {
  const out: string[] = []
  maskDatabaseUrl(url, (s) => out.push(s))
  return out
}

describe('maskDatabaseUrl', () => {
  test.each([
    // url, secrets that must be masked (besides the URL itself)
    ['postgres://chainlink:hunter2@db:5432/chainlink', ['hunter2']],
    ['postgresql://chainlink:hunter2@db/chainlink?sslmode=disable', ['hunter2']],
    ['postgres://chainlink:p%40ss%2Fw%3Ard@db/chainlink', ['p%40ss%2Fw%3Ard', 'p@ss/w:rd']],
    ['postgres://chainlink:pa:ss@db/chainlink', ['pa:ss']],
    ['postgres://:hunter2@db/chainlink', ['hunter2']],
    ['postgres://chainlink@db/chainlink?password=hunter2&sslmode=disable', ['hunter2']],
    ['postgres://chainlink@db/chainlink?password=p%40ss', ['p@ss']],
    // a malformed escape cannot be decoded: the raw form is still masked
    ['postgres://chainlink:100%zz@db/chainlink', ['100%zz']]
  ])('%s', (url, secrets) => {
    const got = masks(url)
    expect(got[0]).toBe(url)
    expect(got).toEqual(expect.arrayContaining(secrets))
  })

  test.each([
    'postgres://chainlink@db/chainlink',
    'postgres://db:5432/chainlink',
    'postgres:///chainlink?host=/run/postgresql',
    'not a url at all'
  ])('%s: no password, only the URL is masked', (url) => {
    expect(masks(url)).toEqual([url])
  })

  test('nothing shorter than the password is registered (a mask of "p" would blank every p in the log)', () => {
    for (const s of masks('postgres://chainlink:hunter2@db:5432/chainlink?sslmode=disable'))
      expect(s.length).toBeGreaterThanOrEqual('hunter2'.length)
  })

  // Regression (was a bug, fixed): a password with a raw '@' (`p@ss`) is what the node and pg both read as the password
  // (the userinfo ends at the LAST '@'), but maskDatabaseUrl's regex stops at the first '@' and
  // masks only 'p'. The real password is never registered as a secret on its own.
  test('a raw @ in the password: the whole password is masked', () => {
    const url = 'postgres://chainlink:p@ss@db:5432/chainlink'
    expect(new URL(url).password).toBe('p%40ss') // what pg and the node use, decoded: p@ss
    expect(masks(url)).toEqual(expect.arrayContaining(['p@ss']))
  })
})

describe('isSecretEnvKey', () => {
  // The node's env secrets (core/config/env/env.go EnvSecret, and their v1 names).
  test.each([
    'CL_DATABASE_URL',
    'DATABASE_URL',
    'CL_EXPLORER_ACCESS_KEY',
    'EXPLORER_ACCESS_KEY',
    'CL_EXPLORER_SECRET',
    'CL_PASSWORD_KEYSTORE',
    'CL_PASSWORD_VRF',
    'CL_PYROSCOPE_AUTH_TOKEN',
    'CL_PROMETHEUS_AUTH_TOKEN',
    'KEYSTORE_PASSWORD',
    'POSTGRES_PASSWORD',
    'database_url',
    'AWS_SECRET_ACCESS_KEY',
    'GITHUB_TOKEN',
    'ETH_PRIVATE_KEY',
    'GOOGLE_APPLICATION_CREDENTIALS'
  ])('%s is a secret', (k) => expect(isSecretEnvKey(k)).toBe(true))

  // Regression (was a bug, fixed): two of the node's own env secrets were not recognised, so the env masking
  // never masks them: the backup DB URL (with its password) and the threshold key share.
  test.each(['CL_DATABASE_BACKUP_URL', 'DATABASE_BACKUP_URL', 'CL_THRESHOLD_KEY_SHARE'])('%s is a secret', (k) =>
    expect(isSecretEnvKey(k)).toBe(true)
  )

  test.each([
    'CL_CONFIG',
    'DATABASE_LOCKING_MODE',
    'LEASE_LOCK_DURATION',
    'ADVISORY_LOCK_ID',
    'CHAINLINK_PORT',
    'PATH',
    'HOME',
    'ROOT',
    'LOG_LEVEL',
    'ETH_CHAIN_ID',
    'CHAINLINK_TLS_PORT',
    'KEY_FILE_DIR'
  ])('%s is not a secret', (k) => {
    expect(isSecretEnvKey(k)).toBe(false)
  })
})

describe('urlCredentials: what a URL in the node config carries', () => {
  test.each([
    ['wss://user:s3cr3t-pw@rpc.example.com/ws', ['s3cr3t-pw']],
    ['https://rpc.example.com/?apikey=K3y-abc123&chain=1', ['K3y-abc123']],
    ['https://rpc.example.com/v1?api_key=aaaa1111&token=tttt2222&x=1', ['aaaa1111', 'tttt2222']],
    ['https://rpc.example.com/?auth=Bearer%20zzzz9999', ['Bearer%20zzzz9999']],
    ['https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef', ['0123456789abcdef0123456789abcdef']],
    ['https://eth-mainnet.g.alchemy.com/v2/Abc_def-GHI123456789jklMNOpqr', ['Abc_def-GHI123456789jklMNOpqr']],
    ['https://longtokenvalue123@rpc.example.com/', ['longtokenvalue123']],
    ['URL = "wss://a:pw1234@x/ws", HTTPURL = "https://x/?key=k9k9k9k9"', ['pw1234', 'k9k9k9k9']]
  ])('%s', (text, secrets) => {
    expect(urlCredentials(text)).toEqual(expect.arrayContaining(secrets))
  })
  test.each([
    'https://rpc.example.com/v3/?chain=1&network=mainnet',
    'http://127.0.0.1:6688/readyz',
    'postgres://cl@db/chainlink_production_database_2024',
    'https://user@host/',
    'no url here'
  ])('%s: nothing secret', (text) => expect(urlCredentials(text)).toEqual([]))
})

describe('redactUrlCredentials: printed text', () => {
  test.each([
    [
      'Dial failed url=wss://rpc.example.com/ws?apikey=abc12345&chain=1',
      'Dial failed url=wss://rpc.example.com/ws?apikey=***&chain=1'
    ],
    ['postgres://u:pw%40x@db/x?sslmode=disable', 'postgres://u:***@db/x?sslmode=disable'],
    [
      'image 127.0.0.1:5555/smartcontract/chainlink@sha256:abc',
      'image 127.0.0.1:5555/smartcontract/chainlink@sha256:abc'
    ],
    ['http://127.0.0.1:6688/health?failing', 'http://127.0.0.1:6688/health?failing']
  ])('%s', (text, want) => expect(redactUrlCredentials(text)).toBe(want))
})

const parse = (t: string) => parseToml(t)

describe('secretsTomlSecrets: every string value, whatever its keys', () => {
  const toml = `
[Database]
URL = 'postgresql://cl:db-pass-1234@db:5432/cl'
BackupURL = 'postgresql://cl:backup-pass-5678@db2/cl'
[Password]
Keystore = 'keystore-pass-abcdefgh'
VRF = 'vrf-pass-ijklmnop'
[Mercury.Credentials.cred1]
URL = 'https://mercury.example.com'
Username = 'mercury-user-01'
Password = 'mercury-pass-02'
[Threshold]
ThresholdKeyShare = 'threshold-share-03'
[Pyroscope]
AuthToken = 'pyro-token-04'
[Some.Future]
Unknown = ['array-value-05']
`
  test('all of them, and the URL passwords on their own', () => {
    const got = secretsTomlSecrets(toml, parse)
    for (const s of [
      'postgresql://cl:db-pass-1234@db:5432/cl',
      'db-pass-1234',
      'backup-pass-5678',
      'keystore-pass-abcdefgh',
      'vrf-pass-ijklmnop',
      'mercury-user-01',
      'mercury-pass-02',
      'threshold-share-03',
      'pyro-token-04',
      'array-value-05'
    ])
      expect(got).toContain(s)
  })
  test('a file that does not parse: its values are still masked', () => {
    const got = secretsTomlSecrets('[Password]\nKeystore = \'unterminated-secret-1\nVRF = "vrf-secret-2"\n', parse)
    expect(got).toEqual(expect.arrayContaining(['unterminated-secret-1', 'vrf-secret-2']))
  })
})

describe('configTomlSecrets: URL credentials and secret-looking keys of the config', () => {
  const toml = `
[[EVM]]
ChainID = '1'
[[EVM.Nodes]]
Name = 'primary-1'
WSURL = 'wss://rpc.example.com/ws?apikey=rpc-api-key-06'
HTTPURL = 'https://user:rpc-pass-07@rpc.example.com/'
[WebServer]
HTTPPort = 6688
[Telemetry]
AuthToken = 'telemetry-token-08'
[Database.Lock]
LeaseDuration = '10s'
`
  test('credentials only; ordinary settings are left alone', () => {
    const got = configTomlSecrets(toml, parse)
    expect(got).toEqual(expect.arrayContaining(['rpc-api-key-06', 'rpc-pass-07', 'telemetry-token-08']))
    for (const plain of ['primary-1', '1', '10s', 'wss://rpc.example.com/ws?apikey=rpc-api-key-06'])
      expect(got).not.toContain(plain)
  })
})

describe('envSecrets', () => {
  test('CL_* secrets whole, CL_SECRETS and CL_CONFIG as TOML, URL credentials in any value', () => {
    const env = new Map([
      ['CL_DATABASE_URL', 'postgresql://cl:env-db-pass@db/cl'],
      ['CL_PASSWORD_KEYSTORE', 'env-keystore-pass'],
      ['CL_PASSWORD_VRF', 'env-vrf-pass'],
      ['CL_SECRETS', "[Mercury.Credentials.a]\nPassword = 'env-mercury-pass'"],
      ['CL_CONFIG', "[[EVM.Nodes]]\nWSURL = 'wss://x/ws?token=env-rpc-token'"],
      ['ETH_URL', 'wss://x/ws?key=env-eth-key'],
      ['LOG_LEVEL', 'debug']
    ])
    const got = envSecrets(env, parse)
    expect(got).toEqual(
      expect.arrayContaining([
        'postgresql://cl:env-db-pass@db/cl',
        'env-db-pass',
        'env-keystore-pass',
        'env-vrf-pass',
        'env-mercury-pass',
        'env-rpc-token',
        'env-eth-key'
      ])
    )
    expect(got).not.toContain('debug')
  })
})

describe('credentialFileSecrets: .api and .password files', () => {
  test('every line', () =>
    expect(credentialFileSecrets('admin@example.com\r\napi-password-123456\n\n')).toEqual([
      'admin@example.com',
      'api-password-123456'
    ]))
})

describe('Redactor', () => {
  test('registers each form once and redacts all of them, longest first', () => {
    const r = new Redactor()
    expect(r.add('p@ss word/1')).toEqual(['p@ss word/1', 'p%40ss%20word%2F1'])
    expect(r.add('p@ss word/1')).toEqual([])
    expect(r.redact('a p@ss word/1 b p%40ss%20word%2F1 c')).toBe('a *** b *** c')
  })
  test('strings too short to be a secret are not registered', () => {
    const r = new Redactor()
    expect(r.add('abc')).toEqual([])
    expect(r.redact('abc')).toBe('abc')
  })
  test('a JSON-escaped form is registered too', () => {
    const r = new Redactor()
    expect(r.add('a"b\\c-secret')).toContain('a\\"b\\\\c-secret')
    expect(r.redact(JSON.stringify({ x: 'a"b\\c-secret' }))).toBe('{"x":"***"}')
  })
  test('URL credentials of URLs never registered are redacted as well', () =>
    expect(new Redactor().redact('url=https://h/?apikey=zzz')).toBe('url=https://h/?apikey=***'))
})
