// Runs a bundle exactly as the GitHub runner runs an action: Node 24, env INPUT_* (hyphens kept),
// GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY files, then the post step with the state
// main saved as STATE_*. The one local runner of the integration tests, the fault matrix and the
// bench: a job cancellation (SIGINT, SIGTERM 7.5 s later) or a dead runner (SIGKILL, no post
// step) at a time or at a line of main's output, and any other fault fired at a line.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { loadBed } from './bed.js'

/** What to do when a step is reached: the runner's cancellation, a dead runner, or anything else. */
export type FaultAction = 'sigint' | 'sigkill' | ((child: ChildProcess) => Promise<void> | void)

export interface Hook {
  /** fires once, the first time this returns true for main's output so far */
  when: (stdout: string) => boolean
  do: FaultAction
  /** fire this long after the step was reached (e.g. once a request is on its way) */
  delayMs?: number
}

export interface RunOptions {
  /** the post step runs after main (as the runner does) unless main was SIGKILLed; default true */
  post?: boolean
  /** cancel the job this many ms after main started */
  cancelAfterMs?: number
  /** cancel the job the first time this returns true for main's output so far */
  cancelWhen?: (stdout: string) => boolean
  /** 'SIGKILL': the runner dies with main instead of cancelling it (no 7.5 s grace, no post step) */
  cancelSignal?: 'SIGINT' | 'SIGKILL'
  /** faults fired at lines of main's output */
  hooks?: Hook[]
  /** a step still running after this long is SIGKILLed and reported as hung; default none */
  deadlineMs?: number
  /** the bundle's entry; default this checkout's dist/index.js */
  bundle?: string
  dir?: string
  env?: Record<string, string>
}

export interface ActionRun {
  /** as the runner reports the job: main's exit code, or the post step's when main succeeded */
  exitCode: number | null
  stdout: string
  outputs: Record<string, string>
  summary: string
  state: Record<string, string>
  dir: string
  /** main's own exit code and result output, before the post step could add its own */
  mainExitCode: number | null
  mainResult?: string
  /** which hooks fired */
  fired: boolean[]
  /** main was SIGKILLed: no post step ran */
  killed: boolean
  /** every async fault action settled (errors rethrown to the test) */
  faultsDone: Promise<void>
  /** a step outlived the deadline and was SIGKILLed */
  hung?: string
  /** wall time of main, and of main plus the post step */
  mainMs: number
  totalMs: number
}

const root = resolve(import.meta.dirname, '../..')

/** Parses the runner's file-command format (`key<<delimiter\nvalue\ndelimiter`, or `key=value`). */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i])
    if (m) {
      const val: string[] = []
      for (i++; i < lines.length && lines[i] !== m[2]; i++) val.push(lines[i])
      out[m[1]] = val.join('\n')
    } else if (lines[i].includes('=')) {
      const k = lines[i].indexOf('=')
      out[lines[i].slice(0, k)] = lines[i].slice(k + 1)
    }
  }
  return out
}

/** n-th occurrence of a line starting with `prefix` in main's output */
export function atLine(prefix: string | RegExp, nth = 1): (stdout: string) => boolean {
  const re =
    typeof prefix === 'string'
      ? new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'gm')
      : new RegExp(prefix.source, 'gm')
  return (out) => (out.match(re)?.length ?? 0) >= nth
}

interface Step {
  code: number | null
  stdout: string
  killed: boolean
  hung: boolean
}

function runStep(
  bundle: string,
  env: Record<string, string>,
  hooks: Hook[],
  fired: boolean[],
  pending: Promise<void>[],
  deadlineMs: number | undefined,
  cancelAfterMs?: number
): Promise<Step> {
  return new Promise((res) => {
    const child = spawn(loadBed().node24, [bundle], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let killed = false
    let cancelled = false
    let hung = false
    const deadline =
      deadlineMs === undefined
        ? undefined
        : setTimeout(() => {
            hung = true
            child.kill('SIGKILL')
          }, deadlineMs)
    const fire = (a: FaultAction) => {
      if (a === 'sigkill') {
        killed = true
        child.kill('SIGKILL')
      } else if (a === 'sigint') {
        if (cancelled) return
        cancelled = true
        // as the runner cancels a job: SIGINT, SIGTERM 7.5 s later, then it gives up
        child.kill('SIGINT')
        setTimeout(() => child.kill('SIGTERM'), 7500).unref()
        setTimeout(() => child.kill('SIGKILL'), 10000).unref()
      } else {
        pending.push(Promise.resolve().then(() => a(child)))
      }
    }
    const onData = (d: Buffer) => {
      stdout += d.toString()
      hooks.forEach((h, i) => {
        if (!fired[i] && h.when(stdout)) {
          fired[i] = true
          if (h.delayMs) setTimeout(() => fire(h.do), h.delayMs)
          else fire(h.do)
        }
      })
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    if (cancelAfterMs !== undefined) setTimeout(() => fire('sigint'), cancelAfterMs).unref()
    child.on('exit', (code) => {
      clearTimeout(deadline)
      res({ code, stdout, killed: killed && !hung, hung })
    })
  })
}

export async function runAction(inputs: Record<string, string>, opts: RunOptions = {}): Promise<ActionRun> {
  const bundle = opts.bundle ?? join(root, 'dist/index.js')
  const deadlineMs = opts.deadlineMs
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'clr-action-'))
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary')
  }
  for (const f of Object.values(files)) writeFileSync(f, '')
  const env: Record<string, string> = { ...files, RUNNER_TEMP: dir, ...(opts.env ?? {}) }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  // a cancellation is one more hook on main's output
  const cancel: FaultAction = opts.cancelSignal === 'SIGKILL' ? 'sigkill' : 'sigint'
  const hooks = [...(opts.hooks ?? []), ...(opts.cancelWhen ? [{ when: opts.cancelWhen, do: cancel }] : [])]
  const fired = hooks.map(() => false)
  const pending: Promise<void>[] = []
  const t0 = Date.now()
  const main = await runStep(bundle, env, hooks, fired, pending, deadlineMs, opts.cancelAfterMs)
  const mainMs = Date.now() - t0
  let hung = main.hung ? `main ran over ${deadlineMs} ms` : undefined
  const mainOutputs = parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8'))
  let stdout = main.stdout
  let exitCode = main.code
  const state = parseFileCommands(readFileSync(files.GITHUB_STATE, 'utf8'))
  if (opts.post !== false && !main.killed) {
    const postEnv = { ...env }
    for (const [k, v] of Object.entries(state)) postEnv[`STATE_${k}`] = v
    const post = await runStep(bundle, postEnv, [], [], [], deadlineMs)
    if (post.hung) hung = `the post step ran over ${deadlineMs} ms`
    stdout += `\n--- post ---\n${post.stdout}`
    if (post.code !== 0 && exitCode === 0) exitCode = post.code
  }
  return {
    exitCode,
    stdout,
    outputs: parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
    state,
    dir,
    mainExitCode: main.code,
    mainResult: mainOutputs.result,
    fired: fired.slice(0, opts.hooks?.length ?? 0),
    killed: main.killed,
    faultsDone: Promise.all(pending).then(() => undefined),
    hung,
    mainMs,
    totalMs: Date.now() - t0
  }
}

/**
 * What the runner shows of a step's output: `::add-mask::` commands are consumed, not printed;
 * an annotation's properties (its title) go to the annotation, the line shows its message, here
 * as `::error::message` (likewise warning, notice). `annotationTitles` reads the titles.
 */
export function visible(stdout: string): string {
  return stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .map((l) => l.replace(/^::(error|warning|notice) [^:]*::/, '::$1::'))
    .join('\n')
}

/** The titles of the step's annotations of one kind, unescaped as the runner shows them. */
export function annotationTitles(stdout: string, kind: 'error' | 'warning' | 'notice'): string[] {
  const unescape = (v: string) =>
    v.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%3A/g, ':').replace(/%2C/g, ',').replace(/%25/g, '%')
  return stdout
    .split('\n')
    .map((l) => new RegExp(`^::${kind} (?:[^:]*,)?title=([^,:]*)[,:]`).exec(l)?.[1])
    .filter((t): t is string => t !== undefined)
    .map(unescape)
}
