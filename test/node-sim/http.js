'use strict'
// What answers on the HTTP port and when (§4, §5, §11): the StartUpHealthReport during versioning
// and migrations, then the node's web server with its health routes behind the rate limit.
// Nothing listens in between.
const http = require('node:http')
const { applyRateLimit, serveRequestLog } = require('./requests')

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

/** Counts the request after the handler answered (handlers answer synchronously). */
const counted = (requests, handler) => (req, res) => {
  if (serveRequestLog(requests, req, res)) return
  handler(req, res)
  requests.record(req, res.statusCode)
}

/**
 * core/services/health.go (@09064c6c): a plain ServeMux on ":<HTTPPort>" whose "/" handler
 * answers /health 204 and every other path 503. No rate limit: it is not the gin router.
 */
async function startStartUpHealthReport(port, log, requests) {
  log.info('Starting StartUpHealthReport', { port })
  const server = await listen(
    counted(requests, (req, res) => {
      res.writeHead(new URL(req.url, 'http://x').pathname === '/health' ? 204 : 503)
      res.end()
    }),
    port
  )
  return {
    async stop() {
      await close(server)
      log.info('StartUpHealthReport shutdown complete')
    }
  }
}

const jsonApi = (checks) =>
  JSON.stringify({ data: checks.map((c) => ({ type: 'checks', id: c.name, attributes: { ...c } })) })

/**
 * The node's web server (core/web/router.go, health_controller.go). Every request goes through
 * the rate limiter first. /readyz and /public-readyz: 200 or 503, empty body; /readyz?full: the
 * checks with status 200 even when not ready (the controller sets 503, then jsonAPIResponse writes
 * 200). /health: JSON:API checks sorted by name, 207 when one fails (v1: 200, §5); ?failing omits
 * passing ones. /health.txt: the same as text. Anything else 404.
 */
async function startServer({ port, host, health, limiter, requests, v1 = false, routes = {} }) {
  const { publicReadyz = true, authHealth = 0, authReadyz = 0 } = routes
  const server = await listen(
    counted(requests, (req, res) => {
      if (applyRateLimit(limiter, req, res)) return
      const url = new URL(req.url, 'http://x')
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(404)
        return res.end()
      }
      const p = url.pathname
      // SIM_AUTH_*: the route wants a session this client does not have (401, or 403 from a
      // proxy or middleware that forbids it); the body says nothing about the node
      const auth =
        p === '/health' || p === '/health.txt' || (p === '/readyz' && url.searchParams.has('full'))
          ? authHealth || authReadyz
          : p === '/readyz'
            ? authReadyz
            : 0
      if (auth) {
        res.writeHead(auth, { 'Content-Type': 'application/json' })
        return res.end(JSON.stringify({ errors: [{ detail: auth === 401 ? 'Unauthorized' : 'Forbidden' }] }))
      }
      if (p === '/readyz' || (p === '/public-readyz' && publicReadyz)) {
        const ready = health.ready()
        if (p === '/readyz' && url.searchParams.has('full')) {
          res.writeHead(200, { 'Content-Type': 'application/vnd.api+json' })
          return res.end(jsonApi(health.checks()))
        }
        res.writeHead(ready ? 200 : 503)
        return res.end()
      }
      if (p === '/health' || p === '/health.txt') {
        const all = health.checks()
        const failing = all.some((c) => c.status === 'failing')
        const shown = url.searchParams.has('failing') ? all.filter((c) => c.status === 'failing') : all
        const status = failing && !v1 ? 207 : 200
        if (p === '/health.txt') {
          res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' })
          return res.end(
            shown
              .map((c) => `${c.status === 'passing' ? 'ok' : '!'} ${c.name}${c.output ? `\n\t${c.output}` : ''}\n`)
              .join('')
          )
        }
        res.writeHead(status, { 'Content-Type': 'application/vnd.api+json' })
        return res.end(jsonApi(shown))
      }
      res.writeHead(404, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ detail: 'not found' }] }))
    }),
    port,
    host
  )
  return { stop: () => close(server) }
}

/**
 * The image HEALTHCHECK: `curl -f http://localhost:6688/health` -> exit 0 below 400, else 1. curl
 * has no timeout of its own; Docker's 30 s default applies.
 */
function healthProbe(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 30000 }, (res) => {
      res.resume()
      resolve(res.statusCode < 400 ? 0 : 1)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(1))
  })
}

module.exports = { startStartUpHealthReport, startServer, healthProbe }
