// Masking of secrets and of everything derived from them. A Postgres URL is masked whole, and
// its password both raw and percent-encoded, since either form can end up in an error message.

export function maskDatabaseUrl(url: string, mask: (s: string) => void): void {
  mask(url)
  // The password runs to the LAST '@' before the host, as pg's URL parser and Go read it.
  // (also when it holds an unencoded '/'); masking too much is safe, too little is not.
  const m = /^[a-z]+:\/\/[^:/@]*:(.*)@[^@]*$/i.exec(url)
  if (m && m[1]) {
    mask(m[1])
    try {
      const decoded = decodeURIComponent(m[1])
      if (decoded !== m[1]) mask(decoded)
    } catch {
      /* a malformed escape: the raw form is masked already */
    }
  }
  try {
    const u = new URL(url)
    const pw = u.searchParams.get('password')
    if (pw) mask(pw)
  } catch {
    /* not a URL; masked whole above */
  }
}

/** Env keys of a node container whose values are secrets (DB URLs, keystore and API passwords). */
export function isSecretEnvKey(key: string): boolean {
  return /PASSWORD|SECRET|TOKEN|DATABASE_URL|DATABASE_BACKUP_URL|_KEY$|KEY_SHARE|PRIVATE|CREDENTIAL/i.test(key)
}

/** Env keys whose value is a DB URL (the password inside must be masked on its own too). */
function isDatabaseUrlKey(key: string): boolean {
  return /DATABASE(_BACKUP)?_URL/i.test(key)
}

// ---------------------------------------------------------------------------------------------
// Everything else a node is configured with (docs/security.md lists the places): the secrets
// TOML, credentials inside URLs of the config TOML and the env, the CL_* secret variables, and
// the API credentials and password files. Each function returns the strings to mask; the
// caller registers them (Log.mask) before anything derived from the node is printed.

/** Shorter strings would blank ordinary words in every later line; the node's own passwords are far longer. */
const MIN_SECRET_LENGTH = 4

/** Query parameters and TOML keys whose value is a credential (apikey, key, token, secret, password, auth...). */
const SECRET_NAME = /key|token|secret|pass|pwd|auth|sig|cred|jwt|bearer|private/i

/** URLs inside free text: scheme://... up to whitespace or a quote. */
const URL_IN_TEXT = /[a-z][a-z0-9+.-]*:\/\/[^\s'"<>`]+/gi

/** A path segment that looks like an API key (Infura, Alchemy and QuickNode put theirs in the path). */
const KEY_LIKE_SEGMENT = /^(?=[A-Za-z0-9_-]{24,}$)(?=.*[0-9])(?=.*[A-Za-z]).*$/

function decoded(s: string): string | undefined {
  try {
    const d = decodeURIComponent(s.replace(/\+/g, ' '))
    return d !== s ? d : undefined
  } catch {
    return undefined
  }
}

/** The credentials inside every URL found in `text`: user info, secret query parameters, key-like path segments. */
export function urlCredentials(text: string): string[] {
  const out: string[] = []
  for (const [url] of text.matchAll(URL_IN_TEXT)) {
    // User info runs to the LAST '@' of the URL (an unencoded '@' or '/' in a password); masking
    // too much is safe, too little is not.
    const auth = /^[a-z][a-z0-9+.-]*:\/\/([^@]*)@/i.exec(url)
    if (auth && auth[1]) {
      const info = auth[1]
      const colon = info.indexOf(':')
      if (colon >= 0) {
        const pw = info.slice(colon + 1)
        if (pw) out.push(pw)
      } else if (info.length >= 8) {
        out.push(info) // https://<token>@host: the user name is the credential
      }
    }
    const q = url.indexOf('?')
    if (q >= 0) {
      for (const pair of url.slice(q + 1).split(/[&;#]/)) {
        const eq = pair.indexOf('=')
        if (eq <= 0) continue
        const name = decoded(pair.slice(0, eq)) ?? pair.slice(0, eq)
        const value = pair.slice(eq + 1)
        if (value && SECRET_NAME.test(name)) out.push(value)
      }
    }
    // RPC providers only (a database URL's path is its database name)
    if (/^(https?|wss?):/i.test(url)) {
      const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').replace(/[?#].*$/, '')
      for (const seg of path.split('/')) if (KEY_LIKE_SEGMENT.test(seg)) out.push(seg)
    }
  }
  return out
}

/** Printed text with the credentials of any URL in it replaced (also of URLs we never saw configured). */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_IN_TEXT, (url) => {
    let u = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*:)([^@]*)@/i, (_m, scheme, user) => `${scheme}${user}***@`)
    u = u.replace(/([?&;])([^=&;#]+)=([^&;#]*)/g, (m, sep: string, name: string, value: string) =>
      value && SECRET_NAME.test(decoded(name) ?? name) ? `${sep}${name}=***` : m
    )
    return u
  })
}

type TomlValue = unknown

function walk(value: TomlValue, key: string, visit: (key: string, s: string) => void): void {
  if (typeof value === 'string') visit(key, value)
  else if (Array.isArray(value)) for (const v of value) walk(v, key, visit)
  else if (value && typeof value === 'object' && !(value instanceof Date))
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(v, k, visit)
}

/** `key = 'value'` right-hand sides of a TOML text that does not parse (its values are still secret). */
function rawTomlValues(text: string): string[] {
  const out: string[] = []
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*[^#=[\]]+?=\s*(.*?)\s*$/.exec(line)
    if (!m || !m[1]) continue
    out.push(m[1].replace(/^('''|"""|'|")/, '').replace(/('''|"""|'|")$/, ''))
  }
  return out
}

/**
 * Every string value of a secrets TOML, whatever its keys (passwords, DB URLs, Mercury and
 * Threshold credentials...), and the credentials of the URLs among them.
 */
export function secretsTomlSecrets(text: string, parse: (text: string) => unknown): string[] {
  let doc: unknown
  try {
    doc = parse(text)
  } catch {
    return [...rawTomlValues(text), ...urlCredentials(text)]
  }
  const out: string[] = []
  walk(doc, '', (_k, s) => {
    out.push(...s.split(/\r?\n/), ...urlCredentials(s))
  })
  return out
}

/** A config TOML (or CL_CONFIG): credentials inside its URLs, and values under secret-looking keys. */
export function configTomlSecrets(text: string, parse: (text: string) => unknown): string[] {
  let doc: unknown
  try {
    doc = parse(text)
  } catch {
    return urlCredentials(text)
  }
  const out: string[] = []
  walk(doc, '', (k, s) => {
    if (SECRET_NAME.test(k) && !/url$/i.test(k)) out.push(...s.split(/\r?\n/))
    out.push(...urlCredentials(s))
  })
  return out
}

/** The node's env: CL_* secret variables whole, CL_SECRETS and CL_CONFIG as TOML, URL credentials anywhere. */
export function envSecrets(env: Map<string, string>, parse: (text: string) => unknown): string[] {
  const out: string[] = []
  for (const [k, v] of env) {
    if (!v) continue
    if (k === 'CL_SECRETS') out.push(...secretsTomlSecrets(v, parse))
    else if (k === 'CL_CONFIG') out.push(...configTomlSecrets(v, parse))
    else if (isSecretEnvKey(k)) {
      out.push(...v.split(/\r?\n/))
      if (isDatabaseUrlKey(k)) maskDatabaseUrl(v, (s) => out.push(s))
    }
    out.push(...urlCredentials(v))
  }
  return out
}

/** An API credentials file (email, password) or a password file: every line is secret. */
export function credentialFileSecrets(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l)
}

/** The forms a secret can be printed in: raw, percent-encoded, percent-decoded, JSON-escaped. */
function secretForms(secret: string): string[] {
  const forms = new Set<string>()
  const add = (s: string | undefined) => {
    if (s && s.length >= MIN_SECRET_LENGTH) forms.add(s)
  }
  const s = secret.trim()
  add(s)
  add(encodeURIComponent(s))
  add(decoded(s))
  add(JSON.stringify(s).slice(1, -1))
  return [...forms]
}

/**
 * The secrets registered so far, to redact text this action writes itself (the job summary,
 * outputs, the journal): the runner masks only what it prints after an `::add-mask::` line.
 */
export class Redactor {
  private readonly known = new Set<string>()
  private sorted: string[] = []

  /** Registers a secret in all its forms; returns the forms that are new (to announce once). */
  add(secret: string): string[] {
    const fresh = secretForms(secret).filter((f) => !this.known.has(f))
    for (const f of fresh) this.known.add(f)
    if (fresh.length) this.sorted = [...this.known].sort((a, b) => b.length - a.length)
    return fresh
  }

  redact(text: string): string {
    let out = text
    for (const s of this.sorted) if (out.includes(s)) out = out.split(s).join('***')
    return redactUrlCredentials(out)
  }
}

/** The secrets this process has learned; everything it writes to a file or the log passes through it. */
export const knownSecrets = new Redactor()
