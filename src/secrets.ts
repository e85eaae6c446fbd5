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
export function isDatabaseUrlKey(key: string): boolean {
  return /DATABASE(_BACKUP)?_URL/i.test(key)
}
