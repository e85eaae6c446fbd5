// The set-up most single-node integration files share: one node per test (its own DB, container
// name and state-dir, removed after the test), the upgrade as those files run it, and the end
// state they expect of a node that serves. A file keeps its own `fresh` (what it adds to the
// node: a marker row, env, a layout) on top of `oneNodePerTest(...).fresh`.
import { afterAll, afterEach, expect } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb, docker, removeContainers, simImage, uniqueName, type TestDb } from './bed.js'
import { runAction, type ActionRun, type RunOptions } from './action.js'
import { containerState, nodeUrl, readyz, startNode, writers, type StartOptions, type WriterCheck } from './node.js'

/** One test's node: its DB, container name and state-dir. */
export interface OneNode {
  db: TestDb
  name: string
  stateDir: string
}

/**
 * Registers the file's cleanup (each test's container and DB after it, everything of the file's
 * prefix at the end) and returns what its tests start and check a node with.
 */
export function oneNodePerTest(label: string, dbLabel: string) {
  const prefix = uniqueName(label)
  let n = 0
  let current: OneNode | undefined

  afterAll(async () => {
    await removeContainers(prefix)
  })
  afterEach(async () => {
    const node = current
    current = undefined
    if (!node) return
    await removeContainers(node.name)
    await node.db.drop()
  })

  /** A DB, a container name `<prefix>-<n>` and a state-dir of its own, removed after the test
   *  (with every container whose name starts with it); no node started. */
  async function claim(): Promise<OneNode> {
    const db = await createDb(dbLabel)
    current = { db, name: `${prefix}-${++n}`, stateDir: mkdtempSync(join(tmpdir(), 'clr-state-')) }
    return current
  }

  /** A node named `<prefix>-<n>` on a DB of its own, started as `startNode` starts it. */
  async function fresh(o: Omit<StartOptions, 'name' | 'db'>): Promise<OneNode> {
    const node = await claim()
    await startNode({ ...o, name: node.name, db: node.db })
    return node
  }

  return { prefix, claim, fresh }
}

/** `operation: upgrade` of the node to the simulator's `tag`, backups in its state-dir, stable-for 2 s unless `extra` says otherwise. */
export function upgradeNode(
  node: Pick<OneNode, 'name' | 'stateDir'>,
  tag: string,
  extra: Record<string, string> = {},
  runOpts: RunOptions = {}
): Promise<ActionRun> {
  return runAction(
    {
      operation: 'upgrade',
      container: node.name,
      image: simImage(tag),
      'state-dir': node.stateDir,
      'backup-dir': join(node.stateDir, 'backups'),
      'stable-for': '2s',
      ...extra
    },
    runOpts
  )
}

/** One container named as the node, running `tag` and ready, nothing else of ours beside it, never two writers. */
export async function expectServing(
  node: Pick<OneNode, 'name' | 'db'>,
  tag: string
): Promise<WriterCheck & { id: string }> {
  const st = await containerState(node.name)
  expect(st?.running).toBe(true)
  expect(st?.image).toBe(simImage(tag))
  expect(await readyz((await nodeUrl(node.name))!)).toBe(200)
  const others = (await docker.listContainers({ all: true })).filter((c) =>
    c.Names.some((x) => x.startsWith(`/${node.name}-`))
  )
  expect(others.map((c) => c.Names[0])).toEqual([])
  const w = await writers(node.db)
  expect(w.interleaved).toBe(false)
  return { ...w, id: st!.id }
}
