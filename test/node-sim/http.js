'use strict'
// What answers on the HTTP port and when (§4, §5): the StartUpHealthReport during versioning and
// migrations, then the real server with /health and /readyz. Nothing listens in between.
const http = require('node:http')

function listen(handler, port, host) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler)
    server.once('error', reject)
    // ":<port>" (all interfaces) unless [WebServer] ListenIP names one
    server.listen(port, host, () => resolve(server))
  })
}

function close(server) {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections?.()
  })
}

/** core/services/health.go: /health -> 204, anything else -> 503. */
async function startStartUpHealthReport(port, log) {
  log.info('Starting StartUpHealthReport', { port })
  const server = await listen((req, res) => {
    res.writeHead(new URL(req.url, 'http://x').pathname === '/health' ? 204 : 503)
    res.end()
  }, port)
  return {
    async stop() {
      await close(server)
      log.info('StartUpHealthReport shutdown complete')
    }
  }
}

const CHECKS = [
  'EVM.1337',
  'EVM.1337.BalanceMonitor',
  'EVM.1337.HeadBroadcaster',
  'EVM.1337.HeadTracker',
  'EVM.1337.LogBroadcaster',
  'EVM.1337.Txm',
  'JobSpawner',
  'PipelineORM',
  'PipelineRunner',
  'PromReporter'
]

/**
 * The node's web server: /readyz (200 empty, 503 when a service is not ready) and /health
 * (JSON:API list of checks sorted by name; 207 when one fails, or 200 on v1 where the status
 * was overwritten by jsonAPIResponse, §5 UNCONFIRMED). ?failing omits passing checks.
 */
async function startServer({ port, host, failing = [], v1 = false }) {
  const server = await listen(
    (req, res) => {
      const url = new URL(req.url, 'http://x')
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405)
        return res.end()
      }
      if (url.pathname === '/readyz') {
        res.writeHead(failing.length ? 503 : 200)
        return res.end()
      }
      if (url.pathname === '/health') {
        const data = CHECKS.map((name) => ({
          type: 'checks',
          id: name,
          attributes: {
            name,
            status: failing.includes(name) ? 'failing' : 'passing',
            output: failing.includes(name) ? 'service is not ready' : ''
          }
        })).filter((c) => !url.searchParams.has('failing') || c.attributes.status === 'failing')
        res.writeHead(failing.length && !v1 ? 207 : 200, { 'Content-Type': 'application/vnd.api+json' })
        return res.end(JSON.stringify({ data }))
      }
      res.writeHead(404, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ detail: 'not found' }] }))
    },
    port,
    host
  )
  return { stop: () => close(server) }
}

/** The image HEALTHCHECK: `curl -f http://localhost:<port>/health` -> exit 0 below 400, else 1. */
function healthProbe(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 2000 }, (res) => {
      res.resume()
      resolve(res.statusCode < 400 ? 0 : 1)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(1))
  })
}

module.exports = { startStartUpHealthReport, startServer, healthProbe, CHECKS }
