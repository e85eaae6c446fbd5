// End-to-end, part 1: the real Renovate CLI, offline, with the preset shipped in renovate/,
// against the bed's registry. A fixture repo pins the node to 2.18.0 in the two forms the preset
// covers (dotenv with a digest, compose without); the registry also holds newer unstable and fault
// tags. Renovate must propose 2.20.0 with its digest and nothing else, and the bumped file must
// read back (readDesiredImage) as the new reference and digest.
// Part 2, the last test: the committed bump is fed to the action as `image-file` and the
// simulated node ends on the new image; a re-run on the same file is `unchanged`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createDb, loadBed, removeContainers, uniqueName } from '../support/bed.js'
import { runAction } from '../support/action.js'
import { containerState, nodeUrl, readyz, startNode, writers } from '../support/node.js'
import { readDesiredImage } from '../../src/image/file.js'
import {
  applyRenovateUpdate,
  bumpDesiredStateWithRenovate,
  depsOf,
  ensureRenovate,
  ensureTestImages,
  git,
  loadPreset,
  renovateMissing,
  repoRoot,
  runRenovateLookup,
  testRepository,
  userConfig,
  type RenovateReport
} from '../renovate/renovate.js'

const STABLE = ['1.13.0', '2.18.0', '2.19.0', '2.20.0']
// Newer than 2.20.0 or beside it, and never to be proposed to a stable node.
const UNSTABLE = ['2.20.0-never-ready', '2.20.0-root', '2.21.0-beta0', '2.21.0-rc1', '2.21.0-root']

const missing = renovateMissing()
if (missing) console.warn(`SKIPPED test/integration/renovate.test.ts: ${missing}`)
const describeRenovate = missing ? describe.skip : describe

/** Renovate's warning when a release has no timestamp and the preset lets it through (not a fault). */
const NO_TIMESTAMP_WARNING =
  /did not have a releaseTimestamp, but as we're running with minimumReleaseAgeBehaviour=timestamp-optional, proceeding/

/** A fixture repository holding `files`, with the preset (plus `own` config) as its renovate.json. */
function fixtureRepo(dir: string, files: Record<string, string>, own: Record<string, unknown> = {}): string {
  execFileSync('mkdir', ['-p', dir])
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text)
  writeFileSync(join(dir, 'renovate.json'), JSON.stringify(userConfig(loadBed().registry.split(':')[0], own), null, 2))
  git(dir, 'init', '-q', '-b', 'main')
  git(dir, 'add', '-A')
  git(dir, 'commit', '-q', '-m', 'fixture')
  return dir
}

describeRenovate('Renovate with the chainlink-rollout preset, offline against the bed registry', () => {
  const bed = loadBed()
  const repo = testRepository(bed)
  let renovate: string
  let digests: Record<string, string>
  let dir: string
  let report: RenovateReport

  beforeAll(async () => {
    renovate = ensureRenovate()
    digests = await ensureTestImages([...STABLE, ...UNSTABLE], bed)
    dir = mkdtempSync(join(tmpdir(), 'renovate-fixture-'))
    const work = join(dir, 'work')
    const r = join(dir, 'repo')
    execFileSync('mkdir', ['-p', r, work])
    writeFileSync(
      join(r, 'chainlink.env'),
      [
        '# Desired state of node-1: Renovate bumps it, upgrade.yml rolls the node onto it',
        'POSTGRES_IMAGE=postgres:15',
        `export CHAINLINK_IMAGE="${repo}:2.18.0@${digests['2.18.0']}"  # pinned`,
        'CL_DEV=false',
        ''
      ].join('\n')
    )
    writeFileSync(
      join(r, 'docker-compose.yml'),
      ['services:', '  chainlink:', `    image: ${repo}:2.18.0`, '    restart: always', ''].join('\n')
    )
    writeFileSync(join(r, 'renovate.json'), JSON.stringify(userConfig(bed.registry.split(':')[0]), null, 2))
    git(r, 'init', '-q', '-b', 'main')
    git(r, 'add', '-A')
    git(r, 'commit', '-q', '-m', 'fixture')
    dir = r
    report = await runRenovateLookup(dir, { renovate, bed, workDir: work })
  }, 600000)

  afterAll(() => {
    if (dir && !process.env.KEEP_RENOVATE_FIXTURE) rmSync(join(dir, '..'), { recursive: true, force: true })
  })

  it('the shipped presets pass renovate-config-validator --strict', () => {
    const validator = join(renovate, '..', 'config-validator.js')
    const out = execFileSync(
      bed.node24,
      [validator, '--strict', 'renovate/chainlink.json', 'renovate/insecure-registry.json'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: tmpdir(), LOG_LEVEL: 'info' }
      }
    )
    expect(out).toMatch(/Config validated successfully against 2 file\(s\)/)
  })

  it('finds the pinned dotenv reference, across the registry port, and proposes 2.20.0 with its digest', () => {
    const deps = depsOf(report, 'chainlink.env')
    expect(deps).toHaveLength(1)
    const dep = deps[0]
    expect(dep).toMatchObject({
      manager: 'regex',
      depName: repo,
      currentValue: '2.18.0',
      currentDigest: digests['2.18.0'],
      registryUrl: `http://${bed.registry}`
    })
    expect(dep.updates).toEqual([
      expect.objectContaining({ newValue: '2.20.0', newDigest: digests['2.20.0'], updateType: 'minor' })
    ])
  })

  it('proposes the release at once although the registry gives no release timestamp (not held by minimumReleaseAge)', () => {
    // The bed's registry, like any registry but Docker Hub (ECR, mirrors), gives Renovate no
    // release date. Renovate 42 and later hold such a release for ever under its default
    // minimumReleaseAgeBehaviour=timestamp-required; the preset's timestamp-optional proposes it.
    const dep = depsOf(report, 'chainlink.env')[0]
    expect(dep.updates[0]).toMatchObject({ newValue: '2.20.0', newDigest: digests['2.20.0'] })
    expect(dep.updates[0].pendingChecks).toBeFalsy()
    const bump = report.branches.find((b) => b.branchName.endsWith('-2.x'))!
    expect(bump.pendingChecks).toBe(false)
    expect(bump.dependencyDashboardApproval).toBe(false)
    expect(readFileSync(report.logFile, 'utf8')).toMatch(NO_TIMESTAMP_WARNING)
  })

  it('an operator who sets minimumReleaseAgeBehaviour back to timestamp-required gets the hold (pending until ticked on the dashboard)', async () => {
    const r = fixtureRepo(
      join(dir, '..', 'strict-repo'),
      {
        'node.env': `CHAINLINK_IMAGE=${repo}:2.18.0@${digests['2.18.0']}\n`
      },
      {
        packageRules: [
          { matchPackageNames: ['**/smartcontract/chainlink'], minimumReleaseAgeBehaviour: 'timestamp-required' }
        ]
      }
    )
    const strict = await runRenovateLookup(r, { renovate, bed, workDir: join(dir, '..', 'strict-work') })
    const dep = depsOf(strict, 'node.env')[0]
    expect(dep.updates[0]).toMatchObject({ newValue: '2.20.0', pendingChecks: true })
    expect(strict.branches.find((b) => b.branchName.endsWith('-2.x'))!.pendingChecks).toBe(true)
    expect(readFileSync(strict.logFile, 'utf8')).toMatch(
      /as pending, as they do not have a releaseTimestamp and we're running with minimumReleaseAgeBehaviour=timestamp-required/
    )
  })

  it("the ECR image's path (chainlink/chainlink) gets the preset's rules: digest, stable only, title, label, no hold", async () => {
    // public.ecr.aws cannot be reached from the bed: the same repository path on the bed's registry
    // stands in for it (a pull-through mirror of ECR has this path), and Renovate's own matcher
    // is asked about the ECR name itself
    const ecrRepo = `${bed.registry}/renovate-e2e-ecr/chainlink/chainlink`
    const d = await ensureTestImages(['2.18.0', '2.20.0', '2.21.0-beta0', '2.20.0-root'], bed, ecrRepo)
    const r = fixtureRepo(join(dir, '..', 'ecr-repo'), {
      'node.env': `CHAINLINK_IMAGE=${ecrRepo}:2.18.0@${d['2.18.0']}\n`
    })
    const ecr = await runRenovateLookup(r, { renovate, bed, workDir: join(dir, '..', 'ecr-work') })
    const deps = depsOf(ecr, 'node.env')
    expect(deps).toHaveLength(1)
    expect(deps[0].updates).toEqual([
      expect.objectContaining({ newValue: '2.20.0', newDigest: d['2.20.0'], updateType: 'minor' })
    ])
    expect(deps[0].updates[0].pendingChecks).toBeFalsy()
    const bump = ecr.branches.find((b) => b.branchName.endsWith('-2.x'))!
    expect(bump.prTitle).toBe('Update Chainlink node image to v2.20.0')
    expect(bump.labels).toContain('chainlink-upgrade')
    const { matchRegexOrGlobList } = (await import(
      pathToFileURL(join(renovate, '..', 'util', 'string-match.js')).href
    )) as { matchRegexOrGlobList(input: string, patterns: string[]): boolean }
    const rules = loadPreset('chainlink').packageRules as { matchPackageNames: string[] }[]
    for (const rule of rules) {
      expect(matchRegexOrGlobList('public.ecr.aws/chainlink/chainlink', rule.matchPackageNames)).toBe(true)
      expect(matchRegexOrGlobList('smartcontract/chainlink', rule.matchPackageNames)).toBe(true)
      expect(matchRegexOrGlobList('postgres', rule.matchPackageNames)).toBe(false)
    }
  })

  it('puts a major version behind approval on the dependency dashboard (a separate run: its own registry repository)', async () => {
    const majorRepo = `${bed.registry}/renovate-e2e-major/smartcontract/chainlink`
    const d = await ensureTestImages(['2.20.0', '3.0.0'], bed, majorRepo)
    const r = join(dir, '..', 'major-repo')
    execFileSync('mkdir', ['-p', r])
    writeFileSync(join(r, 'node.env'), `CHAINLINK_IMAGE=${majorRepo}:2.20.0@${d['2.20.0']}\n`)
    writeFileSync(join(r, 'renovate.json'), JSON.stringify(userConfig(bed.registry.split(':')[0]), null, 2))
    git(r, 'init', '-q', '-b', 'main')
    git(r, 'add', '-A')
    git(r, 'commit', '-q', '-m', 'fixture')
    const majorReport = await runRenovateLookup(r, { renovate, bed, workDir: join(dir, '..', 'major-work') })
    const deps = depsOf(majorReport, 'node.env')
    expect(deps).toHaveLength(1)
    expect(deps[0].updates).toEqual([
      expect.objectContaining({ newValue: '3.0.0', newDigest: d['3.0.0'], updateType: 'major' })
    ])
    const major = majorReport.branches.find((b) => b.branchName.endsWith('-3.x'))
    expect(major).toBeDefined()
    expect(major!.dependencyDashboardApproval).toBe(true)
    expect(major!.prTitle).toBe('Update Chainlink node image to v3')
    // the minor bumps of the main fixture need no approval
    expect(report.branches.find((b) => b.branchName.endsWith('-2.x'))!.dependencyDashboardApproval).toBe(false)
  })

  it('finds the compose image, proposes 2.20.0 with its digest and pins the current tag', () => {
    const deps = depsOf(report, 'docker-compose.yml').filter((d) => d.depName === repo)
    expect(deps).toHaveLength(1)
    expect(deps[0].manager).toBe('docker-compose')
    const byType = Object.fromEntries(deps[0].updates.map((u) => [u.updateType, u]))
    expect(byType.minor).toMatchObject({ newValue: '2.20.0', newDigest: digests['2.20.0'] })
    expect(byType.pinDigest).toMatchObject({ newValue: '2.18.0', newDigest: digests['2.18.0'] })
    expect(deps[0].updates).toHaveLength(2)
  })

  it('never proposes an unstable, -root or fault tag to a stable node', () => {
    const proposed = Object.values(report.packageFiles).flatMap((files) =>
      files.flatMap((f) => f.deps.flatMap((d) => d.updates.map((u) => u.newValue)))
    )
    expect(proposed.length).toBeGreaterThan(0)
    for (const v of proposed) expect(v).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it('keeps a node on a -root image on -root images (a separate run: its own fixture)', async () => {
    const r = join(dir, '..', 'root-repo')
    execFileSync('mkdir', ['-p', r])
    writeFileSync(join(r, 'node.env'), `CHAINLINK_IMAGE=${repo}:2.20.0-root@${digests['2.20.0-root']}\n`)
    writeFileSync(join(r, 'renovate.json'), JSON.stringify(userConfig(bed.registry.split(':')[0]), null, 2))
    git(r, 'init', '-q', '-b', 'main')
    git(r, 'add', '-A')
    git(r, 'commit', '-q', '-m', 'fixture')
    const rootReport = await runRenovateLookup(r, { renovate, bed, workDir: join(dir, '..', 'root-work') })
    const deps = depsOf(rootReport, 'node.env')
    expect(deps).toHaveLength(1)
    expect(deps[0].updates).toEqual([
      expect.objectContaining({ newValue: '2.21.0-root', newDigest: digests['2.21.0-root'] })
    ])
  })

  it('titles and labels the PR', () => {
    const bump = report.branches.find((b) => b.branchName.endsWith('-2.x'))
    expect(bump).toBeDefined()
    expect(bump!.prTitle).toBe('Update Chainlink node image to v2.20.0')
    expect(bump!.labels).toContain('chainlink-upgrade')
    const pin = report.branches.find((b) => b.branchName === 'renovate/pin-dependencies')
    expect(pin?.labels).toContain('chainlink-upgrade')
  })

  it('talks to the plain-HTTP registry without warnings (insecure-registry preset, internal host allowed)', () => {
    // the one warning left is Renovate saying it proposes an undated release (the preset's choice)
    expect(report.warnings.filter((w) => !NO_TIMESTAMP_WARNING.test(w))).toEqual([])
    expect(report.ms).toBeLessThan(60000)
  })

  it('the compose file, bumped as the PR would, reads back as the new reference and digest', () => {
    const dep = depsOf(report, 'docker-compose.yml').find((d) => d.depName === repo)!
    const update = dep.updates.find((u) => u.updateType === 'minor')!
    const after = applyRenovateUpdate(readFileSync(join(dir, 'docker-compose.yml'), 'utf8'), dep, update, renovate)
    expect(after).toContain(`    image: ${repo}:2.20.0@${digests['2.20.0']}\n`)
    expect(readDesiredImage(after, 'docker-compose.yml')).toEqual({
      reference: `${repo}:2.20.0@${digests['2.20.0']}`,
      repository: repo,
      tag: '2.20.0',
      digest: digests['2.20.0'],
      line: 3
    })
  })

  it('the dotenv file, bumped and committed as the merged PR would, reads back as the new reference and digest', async () => {
    const bump = await bumpDesiredStateWithRenovate(dir, 'chainlink.env', { report })
    expect(bump.after).toBe(
      bump.before.replace(`${repo}:2.18.0@${digests['2.18.0']}`, `${repo}:2.20.0@${digests['2.20.0']}`)
    )
    expect(bump.after).toContain(`export CHAINLINK_IMAGE="${repo}:2.20.0@${digests['2.20.0']}"  # pinned\n`)
    expect(bump.desired).toEqual({
      reference: `${repo}:2.20.0@${digests['2.20.0']}`,
      repository: repo,
      tag: '2.20.0',
      digest: digests['2.20.0'],
      line: 3
    })
    expect(git(dir, 'log', '--format=%s', '-1').trim()).toBe('Update Chainlink node image to v2.20.0')
  })

  it('end to end: the merged bump is fed to the action as image-file, the node follows; a re-run is unchanged', async () => {
    // the node runs the 2.18.0 the dotenv file pinned (the bump above has been committed)
    const db = await createDb('renovate')
    const name = uniqueName('clr-renovate')
    const stateDir = mkdtempSync(join(tmpdir(), 'clr-state-'))
    try {
      await startNode({ name, tag: '2.18.0', image: `${repo}:2.18.0`, db, layout: 'ports' })
      const desired = readDesiredImage(readFileSync(join(dir, 'chainlink.env'), 'utf8'), 'chainlink.env')
      expect(desired.tag).toBe('2.20.0')
      const inputs = {
        operation: 'upgrade',
        container: name,
        'image-file': join(dir, 'chainlink.env'),
        'state-dir': stateDir,
        'backup-dir': join(stateDir, 'backups'),
        'stable-for': '2s'
      }
      const r = await runAction(inputs, { env: { GITHUB_WORKSPACE: dir } })
      expect(r.outputs.result).toBe('upgraded')
      expect(r.exitCode).toBe(0)
      expect(r.outputs.image).toBe(desired.reference)
      const st = await containerState(name)
      expect(st?.running).toBe(true)
      expect(await readyz((await nodeUrl(name))!)).toBe(200)
      expect((await writers(db)).versions.at(-1)).toBe('2.20.0')
      // a re-run on the same file (or an unrelated commit) restarts nothing
      const again = await runAction(inputs, { env: { GITHUB_WORKSPACE: dir } })
      expect(again.outputs.result).toBe('unchanged')
      expect(again.exitCode).toBe(0)
      expect(await containerState(name)).toEqual(st)
    } finally {
      await removeContainers(name)
      await db.drop()
    }
  })
})
