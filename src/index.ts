import './cjs-shim.js'
import * as core from '@actions/core'
import { run } from './main.js'
import { run as post } from './post.js'

// One bundle serves both steps; the runner tells them apart by the state main saved.
if (core.getState('isPost') === 'true') {
  await post()
} else {
  core.saveState('isPost', 'true')
  await run()
}
