import { describe, expect, test } from '@jest/globals'
import {
  formatRef,
  normaliseRepository,
  parseImageRef,
  repoTag,
  repository,
  type ImageRef
} from '../../../src/image/ref.js'

const D = 'sha256:' + '0123456789abcdef'.repeat(4)

describe('parseImageRef: good references', () => {
  const cases: Array<[string, ImageRef]> = [
    ['smartcontract/chainlink:2.19.0', { path: 'smartcontract/chainlink', tag: '2.19.0' }],
    ['smartcontract/chainlink', { path: 'smartcontract/chainlink', tag: 'latest' }],
    ['postgres', { path: 'postgres', tag: 'latest' }],
    ['postgres:15', { path: 'postgres', tag: '15' }],
    [`smartcontract/chainlink@${D}`, { path: 'smartcontract/chainlink', digest: D }],
    [`smartcontract/chainlink:2.19.0@${D}`, { path: 'smartcontract/chainlink', tag: '2.19.0', digest: D }],
    [
      'localhost:5000/smartcontract/chainlink:2.19.0',
      { registry: 'localhost:5000', path: 'smartcontract/chainlink', tag: '2.19.0' }
    ],
    [
      '127.0.0.1:41234/smartcontract/chainlink:2.19.0',
      { registry: '127.0.0.1:41234', path: 'smartcontract/chainlink', tag: '2.19.0' }
    ],
    ['localhost/chainlink:dev', { registry: 'localhost', path: 'chainlink', tag: 'dev' }],
    ['localhost:5000/chainlink', { registry: 'localhost:5000', path: 'chainlink', tag: 'latest' }],
    [
      `registry.example.com:443/ops/nodes/chainlink:2.19.0-rc.1@${D}`,
      { registry: 'registry.example.com:443', path: 'ops/nodes/chainlink', tag: '2.19.0-rc.1', digest: D }
    ],
    [
      'public.ecr.aws/chainlink/chainlink:2.19.0',
      { registry: 'public.ecr.aws', path: 'chainlink/chainlink', tag: '2.19.0' }
    ],
    [
      'docker.io/smartcontract/chainlink:2.19.0',
      { registry: 'docker.io', path: 'smartcontract/chainlink', tag: '2.19.0' }
    ],
    ['[::1]:5000/chainlink:1', { registry: '[::1]:5000', path: 'chainlink', tag: '1' }],
    ['a__b/c-d--e/f.g:T_1.x-Y', { path: 'a__b/c-d--e/f.g', tag: 'T_1.x-Y' }],
    ['  smartcontract/chainlink:2.19.0\n', { path: 'smartcontract/chainlink', tag: '2.19.0' }],
    [`x:${'a'.repeat(128)}`, { path: 'x', tag: 'a'.repeat(128) }]
  ]
  test.each(cases)('%s', (text, want) => {
    expect(parseImageRef(text)).toEqual({ registry: undefined, tag: undefined, digest: undefined, ...want })
  })
})

describe('parseImageRef: malformed references are refused with a reason', () => {
  test.each([
    ['', /is empty/],
    ['   ', /is empty/],
    ['smartcontract/chainlink 2.19.0', /contains whitespace/],
    ['smartcontract/chain\tlink', /contains whitespace/],
    ['SmartContract/chainlink:2.19.0', /malformed repository component 'SmartContract'/],
    ['smartcontract/Chainlink', /malformed repository component 'Chainlink'/],
    ['smartcontract/chainlink@sha256:abc', /malformed digest 'sha256:abc'/],
    [`smartcontract/chainlink@sha256:${'A'.repeat(64)}`, /malformed digest/],
    [`smartcontract/chainlink@md5:${'a'.repeat(32)}`, /malformed digest/],
    [`smartcontract/chainlink@${'a'.repeat(64)}`, /malformed digest/],
    ['smartcontract/chainlink@', /malformed digest/],
    ['smartcontract/chainlink:', /malformed tag ''/],
    ['smartcontract/chainlink:-rc', /malformed tag '-rc'/],
    ['smartcontract/chainlink:.1', /malformed tag/],
    [`x:${'a'.repeat(129)}`, /malformed tag/],
    ['smartcontract/chainlink:2.19.0:extra', /malformed/],
    [':2.19.0', /no repository name/],
    ['localhost:5000/', /no repository name/],
    ['localhost:5000/:tag', /no repository name/],
    ['/chainlink', /malformed repository component ''/],
    ['smartcontract//chainlink', /malformed repository component ''/],
    ['smartcontract/chainlink/', /malformed repository component ''/],
    ['smartcontract/chain..link', /malformed repository component 'chain..link'/],
    ['smart..contract/chainlink', /malformed registry 'smart..contract'/],
    ['smartcontract/chainlink-', /malformed repository component/],
    ['smartcontract/_chainlink', /malformed repository component/],
    ['smartcontract/a___b', /malformed repository component/],
    ['-bad.example.com/chainlink', /malformed registry '-bad.example.com'/],
    ['registry.example.com:port/chainlink', /malformed registry/]
  ])('%j', (text, re) => {
    expect(() => parseImageRef(text)).toThrow(re)
  })

  test('the reason quotes the reference given', () => {
    expect(() => parseImageRef('SmartContract/chainlink:2.19.0')).toThrow("'SmartContract/chainlink:2.19.0'")
  })
})

describe('formatRef, repoTag, repository', () => {
  test.each([
    // text, formatRef, repoTag, repository
    [
      'smartcontract/chainlink:2.19.0',
      'smartcontract/chainlink:2.19.0',
      'smartcontract/chainlink:2.19.0',
      'smartcontract/chainlink'
    ],
    [
      'smartcontract/chainlink',
      'smartcontract/chainlink:latest',
      'smartcontract/chainlink:latest',
      'smartcontract/chainlink'
    ],
    [
      `smartcontract/chainlink@${D}`,
      `smartcontract/chainlink@${D}`,
      'smartcontract/chainlink',
      'smartcontract/chainlink'
    ],
    [
      `localhost:5000/smartcontract/chainlink:2.19.0@${D}`,
      `localhost:5000/smartcontract/chainlink:2.19.0@${D}`,
      'localhost:5000/smartcontract/chainlink:2.19.0',
      'localhost:5000/smartcontract/chainlink'
    ],
    ['[::1]:5000/chainlink:1', '[::1]:5000/chainlink:1', '[::1]:5000/chainlink:1', '[::1]:5000/chainlink']
  ])('%s', (text, formatted, rt, repo) => {
    const ref = parseImageRef(text)
    expect(formatRef(ref)).toBe(formatted)
    expect(repoTag(ref)).toBe(rt)
    expect(repository(ref)).toBe(repo)
    // what formatRef writes parses back to the same reference
    expect(parseImageRef(formatRef(ref))).toEqual(ref)
  })
})

describe('normaliseRepository: Docker Hub names compare equal however they are written', () => {
  test.each([
    ['smartcontract/chainlink', 'docker.io/smartcontract/chainlink'],
    ['docker.io/smartcontract/chainlink', 'docker.io/smartcontract/chainlink'],
    ['postgres', 'docker.io/library/postgres'],
    ['library/postgres', 'docker.io/library/postgres'],
    ['docker.io/library/postgres', 'docker.io/library/postgres'],
    ['localhost:5000/smartcontract/chainlink', 'localhost:5000/smartcontract/chainlink'],
    ['localhost/chainlink', 'localhost/chainlink'],
    ['127.0.0.1:5000/chainlink', '127.0.0.1:5000/chainlink'],
    ['registry.example.com/ops/chainlink', 'registry.example.com/ops/chainlink'],
    ['public.ecr.aws/chainlink/chainlink', 'public.ecr.aws/chainlink/chainlink']
  ])('%s -> %s', (repo, want) => expect(normaliseRepository(repo)).toBe(want))

  test('a private registry is never confused with Docker Hub', () => {
    expect(normaliseRepository('localhost:5000/smartcontract/chainlink')).not.toBe(
      normaliseRepository('smartcontract/chainlink')
    )
    expect(normaliseRepository('registry.example.com/smartcontract/chainlink')).not.toBe(
      normaliseRepository('smartcontract/chainlink')
    )
  })

  // Regression (was a bug, fixed): Docker normalises `docker.io/postgres` to `docker.io/library/postgres` (and
  // `index.docker.io` to `docker.io`), so all of these name the same repository, but
  // normaliseRepository leaves `docker.io/postgres` and `index.docker.io/...` as written: an
  // official image given as `docker.io/postgres:15` would not match its own RepoDigests.
  test.each([['docker.io/postgres'], ['index.docker.io/library/postgres'], ['index.docker.io/postgres']])(
    '%s is the same repository as postgres',
    (repo) => {
      expect(normaliseRepository(repo)).toBe(normaliseRepository('postgres'))
    }
  )
})
