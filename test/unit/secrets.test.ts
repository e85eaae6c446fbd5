import { describe, expect, test } from '@jest/globals'
import { isSecretEnvKey, maskDatabaseUrl } from '../../src/secrets.js'

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

  // Regression (was a bug, fixed): two of the node's own env secrets are not recognised, so maskContainerSecrets (node.ts)
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
