import { describe, expect, test } from '@jest/globals'
import {
  otherUpdaters,
  updatersRefusal,
  watchtowerSettings,
  type NodeFacts,
  type Updater
} from '../../../src/safeguards/other-updaters.js'

const WT = 'com.centurylinklabs.watchtower'
const node = (labels: Record<string, string> = {}, healthcheck = false, name = 'chainlink'): NodeFacts => ({
  name,
  labels,
  healthcheck
})
const watchtower = (env: Record<string, string> = {}, args: string[] = []): Updater => ({
  kind: 'watchtower',
  name: 'watchtower',
  image: 'containrrr/watchtower',
  env,
  args
})
const autoheal = (env: Record<string, string> = {}): Updater => ({
  kind: 'autoheal',
  name: 'autoheal',
  image: 'willfarrell/autoheal',
  env,
  args: []
})
const UPGRADE = { imageChanges: true }

type Row = [
  string,
  Updater[],
  NodeFacts[],
  Array<[string, 'refuse' | 'warn']>,
  { imageChanges: boolean; imageFile?: string }?
]
const rows: Row[] = [
  ['nothing else on the host', [], [node()], []],
  ['Watchtower watching every container', [watchtower()], [node()], [["Watchtower 'watchtower'", 'refuse']]],
  ['Watchtower, node labelled enable=false', [watchtower()], [node({ [`${WT}.enable`]: 'false' })], []],
  ['Watchtower --label-enable, node unlabelled', [watchtower({}, ['--label-enable'])], [node()], []],
  ['WATCHTOWER_LABEL_ENABLE=true, node unlabelled', [watchtower({ WATCHTOWER_LABEL_ENABLE: 'true' })], [node()], []],
  [
    'WATCHTOWER_LABEL_ENABLE=true, node labelled enable=true',
    [watchtower({ WATCHTOWER_LABEL_ENABLE: 'true' })],
    [node({ [`${WT}.enable`]: 'true' })],
    [["Watchtower 'watchtower'", 'refuse']]
  ],
  ['Watchtower monitor-only', [watchtower({ WATCHTOWER_MONITOR_ONLY: 'true' })], [node()], []],
  ['node labelled monitor-only', [watchtower()], [node({ [`${WT}.monitor-only`]: 'true' })], []],
  ['Watchtower of another scope', [watchtower({}, ['--scope', 'web'])], [node()], []],
  [
    'Watchtower of the node scope',
    [watchtower({ WATCHTOWER_SCOPE: 'chain' })],
    [node({ [`${WT}.scope`]: 'chain' })],
    [["Watchtower 'watchtower'", 'refuse']]
  ],
  ['Watchtower --disable-containers naming the node', [watchtower({}, ['-x', 'chainlink,other'])], [node()], []],
  ['Watchtower given other container names', [watchtower({}, ['--interval', '30', 'web', 'db'])], [node()], []],
  [
    'Watchtower given the node by name, flags with values before',
    [watchtower({}, ['--interval', '30', '--cleanup', '--schedule=0 0 4 * * *', 'chainlink'])],
    [node()],
    [["Watchtower 'watchtower'", 'refuse']]
  ],
  [
    'a pair: Watchtower excludes the leader but not the standby',
    [watchtower({}, ['--disable-containers', 'chainlink'])],
    [node(), node({}, false, 'chainlink-b')],
    [["Watchtower 'watchtower'", 'refuse']]
  ],
  [
    'no Watchtower, node labelled enable=true',
    [],
    [node({ [`${WT}.enable`]: 'true' })],
    [[`label ${WT}.enable=true`, 'warn']]
  ],
  [
    'io.containers.autoupdate=registry',
    [],
    [node({ 'io.containers.autoupdate': 'registry' })],
    [["label io.containers.autoupdate=registry on 'chainlink'", 'refuse']]
  ],
  [
    'io.containers.autoupdate=local',
    [],
    [node({ 'io.containers.autoupdate': 'local' })],
    [["label io.containers.autoupdate=local on 'chainlink'", 'refuse']]
  ],
  [
    'io.containers.autoupdate=disabled (no effect)',
    [],
    [node({ 'io.containers.autoupdate': 'disabled' })],
    [["label io.containers.autoupdate=disabled on 'chainlink'", 'warn']]
  ],
  ['autoheal, default label, node unlabelled', [autoheal()], [node({}, true)], []],
  [
    'autoheal, node labelled autoheal=true, healthcheck',
    [autoheal()],
    [node({ autoheal: 'true' }, true)],
    [["autoheal 'autoheal'", 'refuse']]
  ],
  [
    'autoheal all, healthcheck',
    [autoheal({ AUTOHEAL_CONTAINER_LABEL: 'all' })],
    [node({}, true)],
    [["autoheal 'autoheal'", 'refuse']]
  ],
  [
    'autoheal all, no healthcheck (cannot act)',
    [autoheal({ AUTOHEAL_CONTAINER_LABEL: 'all' })],
    [node()],
    [["autoheal 'autoheal'", 'warn']]
  ],
  [
    'autoheal with its own label name',
    [autoheal({ AUTOHEAL_CONTAINER_LABEL: 'heal' })],
    [node({ heal: 'true', autoheal: 'true' }, true)],
    [["autoheal 'autoheal'", 'refuse']]
  ],
  [
    'compose project, upgrade from another file',
    [],
    [
      node({
        'com.docker.compose.project': 'cl',
        'com.docker.compose.project.config_files': '/srv/cl/compose.yml'
      })
    ],
    [["compose project 'cl'", 'warn']],
    UPGRADE
  ],
  [
    'compose project, upgrade from its compose file',
    [],
    [
      node({
        'com.docker.compose.project': 'cl',
        'com.docker.compose.project.config_files': '/srv/cl/compose.yml'
      })
    ],
    [],
    { imageChanges: true, imageFile: '/srv/cl/compose.yml' }
  ],
  [
    'compose project, handoff (the image stays)',
    [],
    [node({ 'com.docker.compose.project': 'cl' })],
    [],
    { imageChanges: false }
  ]
]

describe('otherUpdaters', () => {
  test.each(rows)('%s', (_, updaters, nodes, expected, opts = UPGRADE) => {
    const found = otherUpdaters(updaters, nodes, opts)
    expect(found.map((f) => [f.who.split(' (')[0], f.severity])).toEqual(expected)
  })

  test('the refusal names the updater and the node, and says how to exclude it', () => {
    const msg = updatersRefusal(otherUpdaters([watchtower()], [node()], UPGRADE), false)
    expect(msg).toContain("Watchtower 'watchtower' (containrrr/watchtower) watches 'chainlink'")
    expect(msg).toContain(`${WT}.enable=false`)
    expect(msg).toContain('allow-other-updaters: true')
  })

  test('allow-other-updaters turns a refusal into going on; warnings never refuse', () => {
    const refusing = otherUpdaters([watchtower()], [node()], UPGRADE)
    expect(updatersRefusal(refusing, true)).toBeUndefined()
    const warning = otherUpdaters([autoheal({ AUTOHEAL_CONTAINER_LABEL: 'all' })], [node()], UPGRADE)
    expect(updatersRefusal(warning, false)).toBeUndefined()
  })
})

describe('watchtowerSettings', () => {
  test('flags win over the environment; notification flags take a value', () => {
    const s = watchtowerSettings({ WATCHTOWER_LABEL_ENABLE: 'true', WATCHTOWER_SCOPE: 'a' }, [
      '--label-enable=false',
      '--notification-url',
      'slack://x',
      '--notification-report',
      'node-1'
    ])
    expect(s).toEqual({ labelEnable: false, monitorOnly: false, scope: 'a', disabled: [], only: ['node-1'] })
  })
})
