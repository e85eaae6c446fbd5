// A simulated node configured with a secret in every place a real node keeps one: the secrets
// TOML (every kind of value), an RPC URL with `?apikey=` and user info in the config TOML,
// CL_CONFIG, the CL_* secret variables, a URL in another env variable, and the API credentials
// and password files of `node start -a ... -p ...`, all mounted from a host directory.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { loadBed, type TestDb } from './bed.js'
import { startNode, type SimNode } from './node.js'

export interface SecretNode {
  node: SimNode
  /** the host directory mounted at /chainlink */
  dir: string
  /** every secret, by where it is configured */
  secrets: Record<string, string>
}

export async function startSecretNode(o: { name: string; tag: string; db: TestDb }): Promise<SecretNode> {
  const tag = randomBytes(4).toString('hex')
  const s = {
    rpcApiKey: `leak-rpc-apikey-${tag}`,
    rpcPassword: `leak-rpc-userinfo-${tag}`,
    keystore: `leak-secrets-keystore-${tag}`,
    vrf: `leak-secrets-vrf-${tag}`,
    mercuryUser: `leak-mercury-user-${tag}`,
    mercuryPassword: `leak-mercury-pw-${tag}`,
    thresholdShare: `leak-threshold-share-${tag}`,
    apiEmail: `leak-api-${tag}@example.com`,
    apiPassword: `leak-api-password-${tag}`,
    passwordFile: `leak-password-file-${tag}`,
    clConfigToken: `leak-cl-config-token-${tag}`,
    envKeystore: `leak-env-keystore-${tag}`,
    envVrf: `leak-env-vrf-${tag}`,
    envUrlKey: `leak-env-url-key-${tag}`,
    dbPassword: loadBed().pg.password
  }
  const dir = mkdtempSync(join(tmpdir(), 'clr-secret-node-'))
  const files: Record<string, string> = {
    'config.toml': `[Database.Lock]
LeaseDuration = '3s'
LeaseRefreshInterval = '500ms'

[[EVM]]
ChainID = '1337'

[[EVM.Nodes]]
Name = 'primary-1'
WSURL = 'wss://rpc.example.com/ws?apikey=${s.rpcApiKey}'
HTTPURL = 'https://rpcuser:${s.rpcPassword}@rpc.example.com/'
`,
    'secrets.toml': `[Password]
Keystore = '${s.keystore}'
VRF = '${s.vrf}'

[Mercury.Credentials.cred1]
URL = 'https://mercury.example.com'
Username = '${s.mercuryUser}'
Password = '${s.mercuryPassword}'

[Threshold]
ThresholdKeyShare = '${s.thresholdShare}'
`,
    '.api': `${s.apiEmail}\n${s.apiPassword}\n`,
    '.password': `${s.passwordFile}\n`
  }
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(join(dir, f), text)
    chmodSync(join(dir, f), 0o644) // the image's user (uid 14933) reads them
  }
  chmodSync(dir, 0o755)
  const node = await startNode({
    name: o.name,
    tag: o.tag,
    db: o.db,
    layout: 'ports',
    binds: [`${dir}:/chainlink`],
    cmd: [
      'node',
      '-config',
      '/chainlink/config.toml',
      '-secrets',
      '/chainlink/secrets.toml',
      'start',
      '-a',
      '/chainlink/.api',
      '-p',
      '/chainlink/.password'
    ],
    env: {
      CL_CONFIG: `[Tracing]\nCollectorTarget = 'https://otel.example.com/v1?token=${s.clConfigToken}'\n`,
      CL_PASSWORD_KEYSTORE: s.envKeystore,
      CL_PASSWORD_VRF: s.envVrf,
      ETH_URL: `wss://eth.example.com/ws?key=${s.envUrlKey}`
    }
  })
  return { node, dir, secrets: s }
}
