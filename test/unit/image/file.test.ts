import { describe, expect, it } from '@jest/globals'
import { ImageFileError, parseImageReference, readDesiredImage, repositoryPath } from '../../../src/image/file.js'

const D1 = 'sha256:' + 'a'.repeat(64)
const D2 = 'sha256:' + '0123456789abcdef'.repeat(4)

interface Good {
  name: string
  file: string
  text: string
  key?: string
  want: { reference: string; repository: string; tag?: string; digest?: string; line: number }
}

const good: Good[] = [
  {
    name: 'dotenv, tag and digest',
    file: '.env',
    text: `CHAINLINK_IMAGE=smartcontract/chainlink:2.19.0@${D1}\n`,
    want: {
      reference: `smartcontract/chainlink:2.19.0@${D1}`,
      repository: 'smartcontract/chainlink',
      tag: '2.19.0',
      digest: D1,
      line: 1
    }
  },
  {
    name: 'dotenv, double quotes, export, comments and other variables',
    file: 'node.env',
    text: `# desired state of the node\nPOSTGRES_IMAGE=postgres:15\n\nexport CHAINLINK_IMAGE="smartcontract/chainlink:2.19.0@${D1}"  # bumped by Renovate\nOTHER=1\n`,
    want: {
      reference: `smartcontract/chainlink:2.19.0@${D1}`,
      repository: 'smartcontract/chainlink',
      tag: '2.19.0',
      digest: D1,
      line: 4
    }
  },
  {
    name: 'dotenv, single quotes, spaces around =, CRLF',
    file: '.env',
    text: `A=b\r\nCHAINLINK_IMAGE = 'smartcontract/chainlink:2.18.0'\r\n`,
    want: { reference: 'smartcontract/chainlink:2.18.0', repository: 'smartcontract/chainlink', tag: '2.18.0', line: 2 }
  },
  {
    name: 'dotenv, unquoted value with inline comment',
    file: '.env',
    text: `CHAINLINK_IMAGE=smartcontract/chainlink:2.20.0 # pinned\n`,
    want: { reference: 'smartcontract/chainlink:2.20.0', repository: 'smartcontract/chainlink', tag: '2.20.0', line: 1 }
  },
  {
    name: 'dotenv, registry with a port, other variable name found by content',
    file: 'deploy/node.env',
    text: `NODE_IMAGE=127.0.0.1:5555/smartcontract/chainlink:2.18.0@${D2}\nDB_IMAGE=postgres:15\n`,
    want: {
      reference: `127.0.0.1:5555/smartcontract/chainlink:2.18.0@${D2}`,
      repository: '127.0.0.1:5555/smartcontract/chainlink',
      tag: '2.18.0',
      digest: D2,
      line: 1
    }
  },
  {
    name: 'dotenv, key chosen explicitly among two chainlink images',
    file: '.env',
    key: 'STANDBY_IMAGE',
    text: `PRIMARY_IMAGE=smartcontract/chainlink:2.18.0\nSTANDBY_IMAGE=smartcontract/chainlink:2.19.0\n`,
    want: { reference: 'smartcontract/chainlink:2.19.0', repository: 'smartcontract/chainlink', tag: '2.19.0', line: 2 }
  },
  {
    name: 'dotenv, CHAINLINK_IMAGE wins over other chainlink-looking values',
    file: '.env',
    text: `OLD=smartcontract/chainlink:2.10.0\nCHAINLINK_IMAGE=smartcontract/chainlink:2.19.0\n`,
    want: { reference: 'smartcontract/chainlink:2.19.0', repository: 'smartcontract/chainlink', tag: '2.19.0', line: 2 }
  },
  {
    name: 'dotenv, commented-out older value ignored',
    file: '.env',
    text: `# CHAINLINK_IMAGE=smartcontract/chainlink:2.10.0\nCHAINLINK_IMAGE=smartcontract/chainlink:2.19.0\n`,
    want: { reference: 'smartcontract/chainlink:2.19.0', repository: 'smartcontract/chainlink', tag: '2.19.0', line: 2 }
  },
  {
    name: 'dotenv, digest only',
    file: '.env',
    text: `CHAINLINK_IMAGE=smartcontract/chainlink@${D1}\n`,
    want: { reference: `smartcontract/chainlink@${D1}`, repository: 'smartcontract/chainlink', digest: D1, line: 1 }
  },
  {
    name: 'compose, service named chainlink',
    file: 'docker-compose.yml',
    text: `services:\n  postgres:\n    image: postgres:15\n  chainlink:\n    image: smartcontract/chainlink:2.19.0@${D1}\n    restart: always\n`,
    want: {
      reference: `smartcontract/chainlink:2.19.0@${D1}`,
      repository: 'smartcontract/chainlink',
      tag: '2.19.0',
      digest: D1,
      line: 5
    }
  },
  {
    name: 'compose, the only chainlink image under another service name, quoted',
    file: 'compose.yaml',
    text: `services:\n  db:\n    image: "postgres:15"\n  node:\n    image: "127.0.0.1:5555/smartcontract/chainlink:2.18.0"\n`,
    want: {
      reference: '127.0.0.1:5555/smartcontract/chainlink:2.18.0',
      repository: '127.0.0.1:5555/smartcontract/chainlink',
      tag: '2.18.0',
      line: 5
    }
  },
  {
    name: 'compose, ${VAR:-default} reads the default',
    file: 'compose.yml',
    text: `services:\n  chainlink:\n    image: \${CHAINLINK_IMAGE:-smartcontract/chainlink:2.19.0@${D1}}\n`,
    want: {
      reference: `smartcontract/chainlink:2.19.0@${D1}`,
      repository: 'smartcontract/chainlink',
      tag: '2.19.0',
      digest: D1,
      line: 3
    }
  },
  {
    name: 'compose, service chosen by key',
    file: 'compose.yml',
    key: 'cl-secondary',
    text: `services:\n  cl-primary:\n    image: smartcontract/chainlink:2.18.0\n  cl-secondary:\n    image: smartcontract/chainlink:2.19.0\n`,
    want: { reference: 'smartcontract/chainlink:2.19.0', repository: 'smartcontract/chainlink', tag: '2.19.0', line: 5 }
  },
  {
    name: 'non-compose YAML with a top-level image key',
    file: 'deploy/chainlink-node.yml',
    text: `# desired state\nimage: registry.example.com:5000/mirror/node:2.19.0\nreplicas: 1\n`,
    want: {
      reference: 'registry.example.com:5000/mirror/node:2.19.0',
      repository: 'registry.example.com:5000/mirror/node',
      tag: '2.19.0',
      line: 2
    }
  },
  {
    name: 'bare file with comments',
    file: 'chainlink.image',
    text: `# the node follows this reference\n\nsmartcontract/chainlink:2.19.0@${D1}\n`,
    want: {
      reference: `smartcontract/chainlink:2.19.0@${D1}`,
      repository: 'smartcontract/chainlink',
      tag: '2.19.0',
      digest: D1,
      line: 3
    }
  },
  {
    name: 'bare file, no trailing newline, BOM',
    file: 'IMAGE',
    text: `\uFEFF  localhost:5000/smartcontract/chainlink:1.13.0`,
    want: {
      reference: 'localhost:5000/smartcontract/chainlink:1.13.0',
      repository: 'localhost:5000/smartcontract/chainlink',
      tag: '1.13.0',
      line: 1
    }
  }
]

describe('readDesiredImage: the forms operators use', () => {
  it.each(good)('$name', ({ text, file, key, want }) => {
    expect(readDesiredImage(text, file, key ? { key } : undefined)).toEqual(want)
  })
})

interface Bad {
  name: string
  file: string
  text: string
  key?: string
  error: RegExp
}

const bad: Bad[] = [
  { name: 'empty file', file: '.env', text: '\n# nothing\n', error: /^\.env: no image reference found/ },
  {
    name: 'dotenv without any chainlink image',
    file: '.env',
    text: 'DB_IMAGE=postgres:15\nX=1\n',
    error: /^\.env: no image reference found.*key/
  },
  {
    name: 'dotenv with two candidates',
    file: 'prod.env',
    text: 'A_IMAGE=smartcontract/chainlink:2.18.0\nB_IMAGE=smartcontract/chainlink:2.19.0\n',
    error: /^prod\.env: two candidates.*A_IMAGE \(line 1\), B_IMAGE \(line 2\)/
  },
  {
    name: 'dotenv with CHAINLINK_IMAGE twice',
    file: '.env',
    text: 'CHAINLINK_IMAGE=smartcontract/chainlink:2.18.0\nCHAINLINK_IMAGE=smartcontract/chainlink:2.19.0\n',
    error: /^\.env: two candidates.*line 1.*line 2/
  },
  {
    name: 'dotenv with an unknown key',
    file: '.env',
    key: 'NOPE',
    text: 'CHAINLINK_IMAGE=smartcontract/chainlink:2.18.0\n',
    error: /^\.env: no variable NOPE in the file \(it sets CHAINLINK_IMAGE\)/
  },
  {
    name: 'dotenv with a malformed tag',
    file: '.env',
    text: 'CHAINLINK_IMAGE=smartcontract/chainlink:2.19.0!\n',
    error: /^\.env: line 1: CHAINLINK_IMAGE: malformed image reference .*malformed tag '2\.19\.0!'/
  },
  {
    name: 'dotenv with a short digest',
    file: '.env',
    text: 'CHAINLINK_IMAGE=smartcontract/chainlink:2.19.0@sha256:abc\n',
    error: /^\.env: line 1: .*malformed digest 'sha256:abc' \(expected sha256:<64/
  },
  {
    name: 'dotenv with uppercase repository',
    file: '.env',
    text: 'CHAINLINK_IMAGE=smartcontract/ChainLink:2.19.0\n',
    error: /malformed image reference.*malformed repository component 'ChainLink' \(lowercase/
  },
  {
    name: 'dotenv without tag or digest',
    file: '.env',
    text: 'CHAINLINK_IMAGE=smartcontract/chainlink\n',
    error: /^\.env: line 1: .*neither a tag nor a digest/
  },
  {
    name: 'dotenv with interpolation',
    file: '.env',
    text: 'CHAINLINK_IMAGE=${REGISTRY}/smartcontract/chainlink:2.19.0\n',
    error: /^\.env: line 1: CHAINLINK_IMAGE uses a variable/
  },
  {
    name: 'dotenv with an unclosed quote',
    file: '.env',
    text: 'CHAINLINK_IMAGE="smartcontract/chainlink:2.19.0\n',
    error: /^\.env: line 1: CHAINLINK_IMAGE: the value opens a " quote that is not closed/
  },
  {
    name: 'dotenv, empty value',
    file: '.env',
    text: 'CHAINLINK_IMAGE=\n',
    error: /^\.env: line 1: CHAINLINK_IMAGE is empty/
  },
  {
    name: 'not any known form',
    file: 'notes.txt',
    text: 'upgrade the node\nto 2.19.0 please\n',
    error: /^notes\.txt: line 1: not a KEY=value line/
  },
  {
    name: 'compose with two chainlink services',
    file: 'compose.yml',
    text: 'services:\n  a:\n    image: smartcontract/chainlink:2.18.0\n  b:\n    image: smartcontract/chainlink:2.19.0\n',
    error: /^compose\.yml: two candidates.*service "a" \(line 3\), service "b" \(line 5\).*key/
  },
  {
    name: 'compose without a chainlink image',
    file: 'compose.yml',
    text: 'services:\n  db:\n    image: postgres:15\n',
    error: /^compose\.yml: no image reference found: no service named "chainlink".*service "db" \(line 3\)/
  },
  {
    name: 'compose with a variable and no default',
    file: 'compose.yml',
    text: 'services:\n  chainlink:\n    image: ${CHAINLINK_IMAGE}\n',
    error:
      /^compose\.yml: line 3: the image of service "chainlink" uses variable interpolation \(\$\{CHAINLINK_IMAGE\}\)/
  },
  {
    name: 'compose with a partial interpolation',
    file: 'compose.yml',
    text: 'services:\n  chainlink:\n    image: ${REGISTRY:-docker.io}/smartcontract/chainlink:2.19.0\n',
    error: /^compose\.yml: line 3: .*uses variable interpolation/
  },
  {
    name: 'compose with a malformed reference',
    file: 'compose.yml',
    text: 'services:\n  chainlink:\n    image: smartcontract/chainlink:2.19.0@sha256:XYZ\n',
    error: /^compose\.yml: line 3: service "chainlink": malformed image reference/
  },
  {
    name: 'compose with an unknown service key',
    file: 'compose.yml',
    key: 'x',
    text: 'services:\n  chainlink:\n    image: smartcontract/chainlink:2.19.0\n',
    error: /^compose\.yml: no service "x" with an image/
  },
  {
    name: 'invalid YAML',
    file: 'compose.yml',
    text: 'services:\n  chainlink:\n    image: [unclosed\n',
    error: /^compose\.yml: not valid YAML/
  },
  {
    name: 'YAML without services or image',
    file: 'values.yaml',
    text: 'replicas: 1\n',
    error: /^values\.yaml: no image reference found/
  },
  {
    name: 'bare file with a malformed reference',
    file: 'IMAGE',
    text: 'smartcontract/chainlink:\n',
    error: /^IMAGE: line 1: the reference: the file's only token is not a valid image reference/
  },
  {
    name: 'bare file and a key',
    file: 'IMAGE',
    key: 'CHAINLINK_IMAGE',
    text: 'smartcontract/chainlink:2.19.0\n',
    error: /^IMAGE: key "CHAINLINK_IMAGE" was given, but the file holds a bare reference/
  }
]

describe('readDesiredImage: clear errors naming the file', () => {
  it.each(bad)('$name', ({ text, file, key, error }) => {
    let thrown: unknown
    try {
      readDesiredImage(text, file, key ? { key } : undefined)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(ImageFileError)
    expect((thrown as Error).message).toMatch(error)
  })
})

describe('readDesiredImage: an error never echoes the file', () => {
  it.each([
    ['a one-line password file', '.password', 'Hunter2-Keystore-Password!\n'],
    ['an API credentials file', '.api', 'admin@example.com\nHunter2-Api-Password\n'],
    ['a dotenv line with text after the quote', 'x.env', 'CHAINLINK_IMAGE="a" Hunter2-Trailing\n'],
    ['broken YAML', 'x.yml', 'services:\n  chainlink: {image: "Hunter2-Yaml\n']
  ])('%s', (_what, file, text) => {
    let thrown: unknown
    try {
      readDesiredImage(text, file)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(ImageFileError)
    expect((thrown as Error).message).not.toMatch(/Hunter2/)
  })
})

describe('parseImageReference', () => {
  it.each([
    ['smartcontract/chainlink:2.19.0', { repository: 'smartcontract/chainlink', tag: '2.19.0' }],
    [
      '127.0.0.1:5555/smartcontract/chainlink:2.20.0-never-ready',
      { repository: '127.0.0.1:5555/smartcontract/chainlink', tag: '2.20.0-never-ready' }
    ],
    ['ghcr.io/org/sub/chainlink:v2.19.0-beta0', { repository: 'ghcr.io/org/sub/chainlink', tag: 'v2.19.0-beta0' }],
    ['localhost/chainlink@' + D1, { repository: 'localhost/chainlink', digest: D1 }],
    ['[::1]:5000/chainlink:1', { repository: '[::1]:5000/chainlink', tag: '1' }]
  ])('%s', (ref, want) => {
    expect(parseImageReference(ref)).toEqual({ reference: ref, ...want })
  })

  it.each([
    ['smartcontract/chainlink', /neither a tag nor a digest/],
    ['smartcontract/chainlink:', /malformed tag ''/],
    ['smartcontract//chainlink:1', /malformed repository component ''/],
    ['smartcontract/chainlink:1@md5:abcd', /malformed digest 'md5:abcd'/],
    ['smart contract/chainlink:1', /whitespace/],
    ['', /empty/]
  ])('rejects %p', (ref, error) => {
    expect(() => parseImageReference(ref)).toThrow(error)
  })

  it('repositoryPath drops the registry', () => {
    expect(repositoryPath('127.0.0.1:5555/smartcontract/chainlink')).toBe('smartcontract/chainlink')
    expect(repositoryPath('smartcontract/chainlink')).toBe('smartcontract/chainlink')
    expect(repositoryPath('localhost/chainlink')).toBe('chainlink')
  })
})
