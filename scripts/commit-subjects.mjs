// Commit subjects of at most 72 characters (git's and GitHub's width: longer ones are cut in
// `git log --oneline`, in the PR list and in the release notes), the why in the body. Checked on
// the commits after BASE, where the rule started: the history before it keeps its long subjects
// rather than being rewritten. Merge commits are checked too. Run by `npm run lint`; exits 1
// naming each offender. In a shallow clone (CI's checkout) BASE may be missing: then every commit
// there is checked, all of which are newer than BASE.
import { execFileSync } from 'node:child_process'

const BASE = '1b19b451a9e168d3a0bd5d99b54536696ad9bee6'
const MAX = 72

const git = (...args) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })

let log
try {
  git('rev-parse', '--git-dir')
} catch {
  console.log('commit-subjects: not a git checkout, nothing to check')
  process.exit(0)
}
try {
  git('cat-file', '-e', `${BASE}^{commit}`)
  log = git('log', '--format=%h%x09%s', `${BASE}..HEAD`)
} catch {
  log = git('log', '--format=%h%x09%s', 'HEAD')
}
const long = log
  .split('\n')
  .filter(Boolean)
  .map((l) => l.split('\t'))
  // GitHub's own merge commit of a pull request ("Merge <sha> into <sha>") is nobody's subject
  .filter(([, subject]) => [...subject].length > MAX && !/^Merge [0-9a-f]{40} into [0-9a-f]{40}$/.test(subject))
if (long.length) {
  console.error(
    `Commit subjects over ${MAX} characters (shorten the subject, put the why in the body):\n` +
      long.map(([h, s]) => `  ${h} (${[...s].length}): ${s}`).join('\n')
  )
  process.exit(1)
}
