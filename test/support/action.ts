// Runs the committed bundle exactly as the GitHub runner runs an action: Node 24, env INPUT_*
// (hyphens kept), GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY files, then the post step
// with the state main saved as STATE_*.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { loadBed } from './bed.js'

export interface ActionRun {
  exitCode: number | null
  stdout: string
  outputs: Record<string, string>
  summary: string
  state: Record<string, string>
  dir: string
}

const root = resolve(import.meta.dirname, '../..')

/** Parses the runner's file-command format (`key<<delimiter\nvalue\ndelimiter`). */
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

export interface RunOptions {
  /** the post step runs after main (as the runner does); default true */
  post?: boolean
  /** send SIGINT to main after this many ms (job cancellation), SIGTERM 7.5 s later */
  cancelAfterMs?: number
  /** called with main's output so far while it runs; a truthy return cancels the job then */
  cancelWhen?: (stdout: string) => boolean
  /** 'SIGKILL': the runner dies with main instead of cancelling it (no 7.5 s grace) */
  cancelSignal?: 'SIGINT' | 'SIGKILL'
  dir?: string
  env?: Record<string, string>
}

function runStep(
  env: Record<string, string>,
  opts: RunOptions,
  cancellable: boolean
): Promise<{ code: number | null; stdout: string }> {
  const node = loadBed().node24
  return new Promise((res) => {
    const child = spawn(node, [join(root, 'dist/index.js')], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let cancelled = false
    const cancel = () => {
      if (cancelled) return
      cancelled = true
      if (opts.cancelSignal === 'SIGKILL') return void child.kill('SIGKILL')
      child.kill('SIGINT')
      setTimeout(() => child.kill('SIGTERM'), 7500).unref()
      setTimeout(() => child.kill('SIGKILL'), 10000).unref()
    }
    const onData = (d: Buffer) => {
      stdout += d.toString()
      if (cancellable && opts.cancelWhen?.(stdout)) cancel()
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    if (cancellable && opts.cancelAfterMs !== undefined) setTimeout(cancel, opts.cancelAfterMs).unref()
    child.on('exit', (code) => res({ code, stdout }))
  })
}

export async function runAction(inputs: Record<string, string>, opts: RunOptions = {}): Promise<ActionRun> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'clr-action-'))
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary')
  }
  for (const f of Object.values(files)) writeFileSync(f, '')
  const env: Record<string, string> = { ...files, RUNNER_TEMP: dir, ...(opts.env ?? {}) }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const main = await runStep(env, opts, true)
  let stdout = main.stdout
  const state = parseFileCommands(readFileSync(files.GITHUB_STATE, 'utf8'))
  if (opts.post !== false) {
    const postEnv = { ...env }
    for (const [k, v] of Object.entries(state)) postEnv[`STATE_${k}`] = v
    const post = await runStep(postEnv, opts, false)
    stdout += `\n--- post ---\n${post.stdout}`
    if (post.code !== 0 && main.code === 0) main.code = post.code
  }
  return {
    exitCode: main.code,
    stdout,
    outputs: parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
    state,
    dir
  }
}

/** What the runner shows of a step's output: `::add-mask::` commands are consumed, not printed. */
export function visible(stdout: string): string {
  return stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n')
}
