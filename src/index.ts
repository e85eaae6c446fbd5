import './cjs-shim.js'
import { run } from './action.js'
import { main } from './main.js'
import { post } from './post.js'

await run(main, post)
