// Bundled CommonJS dependencies (ssh2, pulled in by dockerode's docker-modem) read the free
// variable `__dirname`, which an ESM bundle does not define. This must be the first import of
// every entry point (docs/decisions.md, "One bundle, CommonJS shim").
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
const g = globalThis as typeof globalThis & { __dirname?: string; __filename?: string }
g.__filename ??= fileURLToPath(import.meta.url)
g.__dirname ??= dirname(g.__filename)
