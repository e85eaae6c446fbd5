// test/unit/ mirrors src/: a unit test sits in the folder of src/ it tests, and a test at the top
// of test/unit/ is named for a file at the top of src/. Besides them: `fixtures` (fakes the
// tests share), `tooling` (tests of the repository's own tools in test/: the simulator, the bench,
// the fault campaign) and the repository-level tests named below. A folder of src/ renamed or a
// test left behind shows here.
import { describe, expect, test } from '@jest/globals'
import { readdirSync, statSync } from 'node:fs'

const ls = (dir: string) => readdirSync(new URL(`../../${dir}`, import.meta.url))
const isDir = (p: string) => statSync(new URL(`../../${p}`, import.meta.url)).isDirectory()
const src = ls('src')
const srcFolders = src.filter((f) => isDir(`src/${f}`))
const srcFiles = src.filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, ''))
/** folders of test/unit that test no folder of src/ */
const SUPPORT = ['fixtures', 'tooling']
/** tests of the repository as a whole: its documents, its release, this layout */
const REPOSITORY = ['docs', 'release', 'layout']

describe('test/unit mirrors src', () => {
  const unit = ls('test/unit')
  test('every folder of test/unit is a folder of src (or shared fixtures, or the tooling)', () => {
    const folders = unit.filter((f) => isDir(`test/unit/${f}`))
    expect(folders.filter((f) => !srcFolders.includes(f) && !SUPPORT.includes(f))).toEqual([])
  })
  test('every test at the top of test/unit is named for a file at the top of src (or the repository)', () => {
    const top = unit.filter((f) => f.endsWith('.test.ts')).map((f) => f.replace(/\.test\.ts$/, ''))
    expect(top.filter((t) => !srcFiles.includes(t) && !REPOSITORY.includes(t))).toEqual([])
  })
  test('no test sits in a folder below a folder of test/unit that src does not have', () => {
    for (const folder of ls('test/unit').filter((f) => srcFolders.includes(f)))
      for (const sub of ls(`test/unit/${folder}`).filter((f) => isDir(`test/unit/${folder}/${f}`)))
        expect(`${folder}/${sub}: ${isDir(`src/${folder}`) && ls(`src/${folder}`).includes(sub)}`).toBe(
          `${folder}/${sub}: true`
        )
  })
})
