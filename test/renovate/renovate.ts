// The real Renovate CLI, offline, against the bed's registry (docs/renovate.md).
// Renovate's local platform (`--platform=local`) stops at the lookup stage: it extracts the
// dependencies and looks up their updates, but writes no branch. At LOG_LEVEL=trace with JSON logs
// it prints everything a PR would carry ("packageFiles with updates", the branch list with titles
// and labels), and applyRenovateUpdate() then rewrites the file exactly as Renovate's auto-replace
// does (the first occurrence of replaceString, replaced by autoReplaceStringTemplate rendered with
// Renovate's own handlebars). So the bumped file is what the merged PR would put on main.
import { execFileSync, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadBed, type Bed } from '../support/bed.js'
import { readDesiredImage, type DesiredImage } from '../../src/image/file.js'

const here = dirname(fileURLToPath(import.meta.url))
export const repoRoot = resolve(here, '../..')

const RENOVATE_PREFIX = process.env.RENOVATE_PREFIX ?? '/opt/chainlink-rollout-renovate'

/** Why the Renovate tests cannot run here (undefined: they can): the bed installs it (test/bed/up.sh). */
export function renovateMissing(): string | undefined {
  const entry = join(RENOVATE_PREFIX, 'node_modules/renovate/dist/renovate.js')
  return existsSync(entry)
    ? undefined
    : `the Renovate CLI is not installed at ${entry} (bash test/bed/up.sh, or bash test/renovate/install.sh, installs it)`
}

/** Installs Renovate once (test/renovate/install.sh); returns the path of dist/renovate.js. */
export function ensureRenovate(): string {
  const out = execFileSync('bash', [join(here, 'install.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600000
  })
  return out.trim().split('\n').pop()!
}

// ------------------------------------------------------------------ registry fixture

/** A repository of the bed's registry that only these tests write to. */
export function testRepository(bed: Bed = loadBed()): string {
  return `${bed.registry}/renovate-e2e/smartcontract/chainlink`
}

/** Digest of a tag in the bed's registry (plain HTTP, v2 API), or undefined if the tag is absent. */
export async function registryDigest(image: string): Promise<string | undefined> {
  const m = /^([^/]+)\/(.+):([^:/]+)$/.exec(image)
  if (!m) throw new Error(`not host/repo:tag: ${image}`)
  const res = await fetch(`http://${m[1]}/v2/${m[2]}/manifests/${m[3]}`, {
    method: 'HEAD',
    headers: {
      accept: [
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.oci.image.index.v1+json'
      ].join(', ')
    }
  })
  if (res.status === 404) return undefined
  if (!res.ok) throw new Error(`registry answered ${res.status} for ${image}`)
  return res.headers.get('docker-content-digest') ?? undefined
}

export async function registryTags(repository: string): Promise<string[]> {
  const [host, ...path] = repository.split('/')
  const res = await fetch(`http://${host}/v2/${path.join('/')}/tags/list`)
  if (res.status === 404) return []
  const body = (await res.json()) as { tags?: string[] | null }
  return body.tags ?? []
}

const docker = (...args: string[]) =>
  execFileSync('docker', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })

/**
 * Makes `tags` exist in testRepository(). A tag the simulator images provide
 * (`<registry>/smartcontract/chainlink:<tag>`, test/bed/images.sh) is copied from there, so the
 * bumped reference runs the simulated node; any other tag (the unstable ones, or all of them
 * before the simulator images exist) is a tiny image of its own whose content names the tag.
 * Idempotent. Returns tag -> digest.
 */
export async function ensureTestImages(
  tags: string[],
  bed: Bed = loadBed(),
  repo = testRepository(bed)
): Promise<Record<string, string>> {
  const simRepo = `${bed.registry}/smartcontract/chainlink`
  const digests: Record<string, string> = {}
  for (const tag of tags) {
    const target = `${repo}:${tag}`
    const simDigest = await registryDigest(`${simRepo}:${tag}`)
    const have = await registryDigest(target)
    if (simDigest) {
      if (have !== simDigest) {
        docker('pull', '-q', `${simRepo}:${tag}`)
        docker('tag', `${simRepo}:${tag}`, target)
        docker('push', target)
      }
    } else if (!have) {
      const dir = mkdtempSync(join(tmpdir(), 'tiny-image-'))
      try {
        writeFileSync(join(dir, 'VERSION'), `${tag}\n`)
        const tar = execFileSync('tar', ['-C', dir, '-c', 'VERSION'])
        execFileSync('docker', ['import', '-', target], { input: tar, stdio: ['pipe', 'ignore', 'pipe'] })
        docker('push', target)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
    const digest = await registryDigest(target)
    if (!digest) throw new Error(`${target} is not in the registry after pushing it`)
    digests[tag] = digest
  }
  return digests
}

// ------------------------------------------------------------------ presets and runs

/** A preset file shipped in renovate/, with its {{argN}} parameters filled in. */
export function loadPreset(name: string, args: string[] = []): Record<string, unknown> {
  let text = readFileSync(join(repoRoot, 'renovate', `${name}.json`), 'utf8')
  args.forEach((a, i) => (text = text.split(`{{arg${i}}}`).join(a)))
  const preset = JSON.parse(text) as Record<string, unknown>
  delete preset.$schema
  return preset
}

/**
 * The repository config a user would write as `extends: [github>OWNER/chainlink-rollout//renovate/chainlink,
 * github>OWNER/chainlink-rollout//renovate/insecure-registry(<host>)]`, with the presets inlined
 * (the local platform resolves no github> presets, and nothing may leave the machine).
 */
export function userConfig(registryHost: string, own: Record<string, unknown> = {}): Record<string, unknown> {
  const chainlink = loadPreset('chainlink')
  const insecure = loadPreset('insecure-registry', [registryHost])
  // the user's own packageRules come after the preset's, as Renovate merges an `extends`
  const packageRules = [...(chainlink.packageRules as unknown[]), ...((own.packageRules as unknown[]) ?? [])]
  return { ...chainlink, hostRules: insecure.hostRules, description: undefined, ...own, packageRules }
}

export interface RenovateUpdate {
  newValue?: string
  newDigest?: string
  updateType: string
  branchName: string
  isPinDigest?: boolean
  /** held by an internal check (minimumReleaseAge): no branch until it passes or is approved */
  pendingChecks?: boolean
}
export interface RenovateDep {
  depName: string
  currentValue?: string
  currentDigest?: string
  replaceString?: string
  autoReplaceStringTemplate?: string
  registryUrl?: string
  skipReason?: string
  updates: RenovateUpdate[]
}
export interface RenovateBranch {
  branchName: string
  prTitle: string
  labels: string[]
  /** created only once ticked on the dependency dashboard */
  dependencyDashboardApproval: boolean
  /** every update of the branch is held by minimumReleaseAge */
  pendingChecks: boolean
}
export interface RenovateReport {
  /** manager -> package files with their deps */
  packageFiles: Record<string, { packageFile: string; deps: RenovateDep[]; autoReplaceStringTemplate?: string }[]>
  branches: RenovateBranch[]
  warnings: string[]
  logFile: string
  ms: number
}

interface LogLine {
  level: number
  msg: string
  config?: unknown
  branches?: {
    branchName: string
    prTitle: string
    labels?: string[]
    dependencyDashboardApproval?: boolean
    upgrades?: { pendingChecks?: boolean }[]
  }[]
}

/**
 * Runs `renovate --platform=local` in repoDir (a git repository whose renovate.json is the user
 * config), offline against the bed's registry, and returns what it would propose.
 */
export async function runRenovateLookup(
  repoDir: string,
  opts: { renovate?: string; bed?: Bed; workDir?: string } = {}
): Promise<RenovateReport> {
  const bed = opts.bed ?? loadBed()
  const renovate = opts.renovate ?? ensureRenovate()
  const work = opts.workDir ?? mkdtempSync(join(tmpdir(), 'renovate-run-'))
  mkdirSync(work, { recursive: true })
  const host = bed.registry.split(':')[0]
  // Admin (global) config: the local platform, caches in the work dir, and the v44 internal-host
  // guard told that the loopback registry is intended (it is documented to flip to "block").
  const globalConfig = join(work, 'global.json')
  writeFileSync(
    globalConfig,
    JSON.stringify({
      platform: 'local',
      baseDir: join(work, 'base'),
      cacheDir: join(work, 'cache'),
      hostRules: [{ matchHost: host, allowInternal: true }]
    })
  )
  const logFile = join(work, 'renovate.log')
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: work,
    RENOVATE_CONFIG_FILE: globalConfig,
    LOG_LEVEL: 'trace',
    LOG_FORMAT: 'json',
    // no proxy, no telemetry, nothing off the machine
    NO_PROXY: '*'
  }
  const started = Date.now()
  const code = await new Promise<number>((resolveRun, reject) => {
    const out: Buffer[] = []
    const child = spawn(bed.node24, [renovate, '--platform=local'], {
      cwd: repoDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => out.push(b))
    const timer = setTimeout(() => child.kill('SIGTERM'), 120000)
    child.on('error', reject)
    child.on('close', (c) => {
      clearTimeout(timer)
      writeFileSync(logFile, Buffer.concat(out))
      resolveRun(c ?? -1)
    })
  })
  const ms = Date.now() - started
  const lines: LogLine[] = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
  if (code !== 0) {
    const errors = lines.filter((l) => l.level >= 50).map((l) => l.msg)
    throw new Error(`renovate exited ${code} (log ${logFile}): ${errors.join('; ')}`)
  }
  const pf = lines.find((l) => l.msg === 'packageFiles with updates')
  const br = lines.filter((l) => Array.isArray(l.branches)).pop()
  return {
    packageFiles: (pf?.config ?? {}) as RenovateReport['packageFiles'],
    branches: (br?.branches ?? []).map((b) => ({
      branchName: b.branchName,
      prTitle: b.prTitle,
      labels: b.labels ?? [],
      dependencyDashboardApproval: b.dependencyDashboardApproval === true,
      pendingChecks: (b.upgrades ?? []).length > 0 && (b.upgrades ?? []).every((u) => u.pendingChecks === true)
    })),
    warnings: lines.filter((l) => l.level === 40 && !/re2/i.test(l.msg)).map((l) => l.msg),
    logFile,
    ms
  }
}

/** All deps of a package file in a report, with the manager that found them. */
export function depsOf(
  report: RenovateReport,
  packageFile: string
): (RenovateDep & { manager: string; template?: string })[] {
  const out: (RenovateDep & { manager: string; template?: string })[] = []
  for (const [manager, files] of Object.entries(report.packageFiles)) {
    for (const f of files) {
      if (f.packageFile !== packageFile) continue
      for (const d of f.deps)
        out.push({ ...d, manager, template: d.autoReplaceStringTemplate ?? f.autoReplaceStringTemplate })
    }
  }
  return out
}

/**
 * Applies one proposed update to a file's text as Renovate's auto-replace would: the first
 * occurrence of the dep's replaceString becomes the rendered autoReplaceStringTemplate (or, with no
 * template, replaceString with currentValue/currentDigest swapped for the new ones).
 */
export function applyRenovateUpdate(
  text: string,
  dep: RenovateDep & { template?: string },
  update: RenovateUpdate,
  renovate = ensureRenovate()
): string {
  const replaceString = dep.replaceString
  if (!replaceString) throw new Error(`${dep.depName}: the report has no replaceString`)
  const at = text.indexOf(replaceString)
  if (at < 0) throw new Error(`${dep.depName}: replaceString not in the file: ${replaceString}`)
  let next: string
  if (dep.template) {
    // Renovate's own handlebars, from its install
    const require = createRequire(renovate)
    const handlebars = require('handlebars') as { compile(t: string): (ctx: unknown) => string }
    next = handlebars.compile(dep.template)({ ...dep, ...update })
  } else {
    next = replaceString
    if (dep.currentValue && update.newValue) next = next.replace(dep.currentValue, update.newValue)
    if (dep.currentDigest && update.newDigest) next = next.replace(dep.currentDigest, update.newDigest)
  }
  return text.slice(0, at) + next + text.slice(at + replaceString.length)
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    'git',
    ['-c', 'user.email=renovate-e2e@example.invalid', '-c', 'user.name=renovate-e2e', ...args],
    { cwd, encoding: 'utf8' }
  )
}

export interface RenovateBump {
  /** Renovate's proposal for the desired-state file */
  dep: RenovateDep & { manager: string }
  update: RenovateUpdate
  /** file text before and after the bump */
  before: string
  after: string
  /** path of the bumped file on disk (in the fixture repo, committed) */
  path: string
  /** readDesiredImage() of the bumped file */
  desired: DesiredImage
  report: RenovateReport
}

/**
 * THE HELPER FOR THE END-TO-END UPGRADE: given a fixture repository (a git repo with renovate.json
 * and the desired-state file at `file`), runs the real Renovate CLI offline, takes the one
 * non-pin update it proposes for that file, applies it, commits it (as the merged PR would) and
 * returns the bumped file, its path and readDesiredImage() of it. Feed `path` to the action as
 * `image-file` (operation upgrade) and check the node ends on `desired.reference`.
 */
export async function bumpDesiredStateWithRenovate(
  repoDir: string,
  file: string,
  opts: { key?: string; report?: RenovateReport } = {}
): Promise<RenovateBump> {
  const report = opts.report ?? (await runRenovateLookup(repoDir))
  const deps = depsOf(report, file).filter((d) => d.updates.some((u) => !u.isPinDigest && u.updateType !== 'pinDigest'))
  if (deps.length !== 1)
    throw new Error(
      `${file}: expected one dependency with a version update, Renovate reported ${deps.length} (log ${report.logFile})`
    )
  const dep = deps[0]
  const updates = dep.updates.filter((u) => !u.isPinDigest && u.updateType !== 'pinDigest')
  if (updates.length !== 1)
    throw new Error(`${file}: expected one version update, got ${updates.map((u) => u.newValue).join(', ')}`)
  const update = updates[0]
  const path = join(repoDir, file)
  const before = readFileSync(path, 'utf8')
  const after = applyRenovateUpdate(before, dep, update)
  writeFileSync(path, after)
  git(repoDir, 'commit', '-q', '-m', `Update Chainlink node image to v${update.newValue}`, '--', file)
  const desired = readDesiredImage(after, file, opts.key ? { key: opts.key } : undefined)
  return { dep, update, before, after, path, desired, report }
}
