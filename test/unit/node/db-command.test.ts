import { describe, expect, test } from '@jest/globals'
import { dbCommand, dbInvocation } from '../../../src/node/db-command.js'

describe('dbCommand: the node start command turned into a db subcommand with the same global flags', () => {
  const SUB = ['rollback', '142']
  test.each<[string, string[] | null | undefined, string[]]>([
    ['v1 image default', ['local', 'node'], ['local', 'db', 'rollback', '142']],
    [
      'v1 with start flags',
      ['local', 'n', '-p', '/chainlink/.password', '-a', '/chainlink/.api'],
      ['local', 'db', 'rollback', '142']
    ],
    ['v2 image default', ['node', 'start'], ['node', 'db', 'rollback', '142']],
    [
      'v2 with config, secrets and a password',
      ['node', '-config', 'a', '-secrets', 'b', 'start', '-p', 'pw'],
      ['node', '-config', 'a', '-secrets', 'b', 'db', 'rollback', '142']
    ],
    [
      'the docs: global flags before node',
      ['-config', '/chainlink/config.toml', '-secrets', '/chainlink/secrets.toml', 'node', 'start'],
      ['-config', '/chainlink/config.toml', '-secrets', '/chainlink/secrets.toml', 'node', 'db', 'rollback', '142']
    ],
    [
      'short and = forms',
      ['node', '-c', 'a', '-c', 'b', '--secrets=s', 'start', '-a', 'api'],
      ['node', '-c', 'a', '-c', 'b', '--secrets=s', 'db', 'rollback', '142']
    ],
    [
      '--config with a value',
      ['node', '--config', 'start.toml', '-s', 'node.toml', 'start'],
      ['node', '--config', 'start.toml', '-s', 'node.toml', 'db', 'rollback', '142']
    ],
    ['empty', [], ['node', 'db', 'rollback', '142']],
    ['null', null, ['node', 'db', 'rollback', '142']],
    ['undefined', undefined, ['node', 'db', 'rollback', '142']],
    ['only global flags', ['-config', 'a'], ['-config', 'a', 'node', 'db', 'rollback', '142']]
  ])('%s: %j', (_, cmd, want) => expect(dbCommand(cmd, SUB)).toEqual(want))

  test('the start password and API credential files never reach the db command', () => {
    const out = dbCommand(
      [
        'node',
        '-config',
        'a',
        'start',
        '-p',
        '/run/secrets/pw',
        '-a',
        '/run/secrets/api',
        '--vrfpassword',
        '/run/secrets/vrf'
      ],
      ['version']
    )
    expect(out).toEqual(['node', '-config', 'a', 'db', 'version'])
  })

  test('the node command given is not modified', () => {
    const cmd = ['node', '-config', 'a', 'start']
    dbCommand(cmd, ['version'])
    expect(cmd).toEqual(['node', '-config', 'a', 'start'])
  })
})

describe('dbInvocation: the db subcommand as the container runs the node', () => {
  test.each([
    [
      'image entrypoint, operator command',
      null,
      ['node', '-config', '/c.toml', 'start'],
      { cmd: ['node', '-config', '/c.toml', 'db', 'rollback', '7'] }
    ],
    [
      'entrypoint is the binary with the start command',
      ['chainlink', 'node', 'start'],
      null,
      { entrypoint: ['chainlink'], cmd: ['node', 'db', 'rollback', '7'] }
    ],
    [
      'absolute binary, flags in the entrypoint',
      ['/usr/local/bin/chainlink', 'node', '-secrets', '/s.toml'],
      ['start'],
      { entrypoint: ['/usr/local/bin/chainlink'], cmd: ['node', '-secrets', '/s.toml', 'db', 'rollback', '7'] }
    ],
    [
      'a wrapper script keeps its entrypoint',
      ['/scripts/entry.sh'],
      ['local', 'node'],
      { cmd: ['local', 'db', 'rollback', '7'] }
    ]
  ])('%s', (_what, ep, cmd, want) => {
    expect(dbInvocation(ep as string[] | null, cmd as string[] | null, ['rollback', '7'])).toEqual(want)
  })
})
