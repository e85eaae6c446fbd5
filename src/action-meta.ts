// Generated from action.yml and package.json by scripts/action-meta.mjs (npm run bundle runs it):
// the command line's version and flags, bundled so that dist/cli.js reads no file beside it.

export const VERSION = '0.1.0'

/** Every input of action.yml, in its order: the CLI's flags (`boolean`: a bare flag means true). */
export const INPUTS: ReadonlyArray<{ name: string; description: string; default: string; boolean: boolean }> = [
  {
    name: 'operation',
    description:
      "What to do: upgrade, handoff, restart, status, backup, restore, repair, drain (hand the lock to a waiting instance on another host and keep this host's instance stopped) or resume (start this host's drained instance again as a waiting standby).",
    default: 'upgrade',
    boolean: false
  },
  {
    name: 'container',
    description: 'Name of the node container (the leader, or the primary of a failover pair).',
    default: 'chainlink',
    boolean: false
  },
  {
    name: 'standby',
    description: 'Name of the other container of a failover pair on the same database (empty for a single node).',
    default: '',
    boolean: false
  },
  {
    name: 'image',
    description:
      'Target image reference for upgrade, e.g. smartcontract/chainlink:2.19.0 or ...@sha256:<digest> (the digest is verified).',
    default: '',
    boolean: false
  },
  {
    name: 'image-file',
    description:
      "File in your repo holding the desired image (dotenv CHAINLINK_IMAGE=..., a compose file's image:, or a bare reference). Instead of image. Must be inside the workspace; relative to it.",
    default: '',
    boolean: false
  },
  {
    name: 'database-url',
    description:
      "The node's Postgres URL. Default: read from the container (CL_DATABASE_URL, DATABASE_URL or the -secrets TOML). Masked.",
    default: '',
    boolean: false
  },
  {
    name: 'lock-mode',
    description: 'How the node locks its DB: auto (detect from the container), lease, advisorylock or dual.',
    default: 'auto',
    boolean: false
  },
  {
    name: 'health-url',
    description:
      "Base URL of the node's HTTP server from the runner, as a form for every container of the node: {address} (the container's IP, 127.0.0.1 with host networking), {port} (the host port published for the node's HTTP port, else that port) and {name} (the container's name) are filled in per container, e.g. http://127.0.0.1:{port} (published port) or http://{name}:6688 (runner on the node's network). A URL without a placeholder only fits host networking. Default: http://127.0.0.1:<HTTPPort> with host networking, else http://<container IP>:<HTTPPort>. Preflight proves /readyz 200 on the leader at this URL before anything changes.",
    default: '',
    boolean: false
  },
  {
    name: 'remote-health-url',
    description:
      "drain: base URL of the node's instance on another host, as this runner reaches it (e.g. http://10.0.2.7:6688). When given, the new leader must answer /readyz 200 there through stable-for, besides the database's evidence (lease renewals, its own sessions at work).",
    default: '',
    boolean: false
  },
  {
    name: 'stop-timeout',
    description:
      "Grace for the old leader to stop on SIGTERM before it is killed (1500ms, 30s, 5m or seconds). Default: the container's stop timeout, at least the node's ShutdownGracePeriod + 5s.",
    default: '',
    boolean: false
  },
  {
    name: 'standby-timeout',
    description:
      'How long a new container may take to open its DB session and wait for the lock. Default: 30s + 3 lease refresh intervals.',
    default: '',
    boolean: false
  },
  {
    name: 'ready-timeout',
    description:
      'How long the new leader may take to answer /readyz 200 after taking the lock (migrations can be long).',
    default: '10m',
    boolean: false
  },
  {
    name: 'stable-for',
    description: 'How long the new leader must stay ready, without a restart, before the operation is done.',
    default: '10s',
    boolean: false
  },
  {
    name: 'rollback',
    description: 'Roll back automatically (database included) when anything fails after the handoff.',
    default: 'true',
    boolean: true
  },
  {
    name: 'db-rollback',
    description:
      "When the new version already migrated the DB, how to bring it back for the old one: migrate-down (the new image's node db rollback; no writes lost) or restore (the pre-upgrade backup; later writes lost).",
    default: 'migrate-down',
    boolean: false
  },
  {
    name: 'finish',
    description:
      "Single node with published ports (the docs' layout): swap (verify the new image as a waiting standby on spare ports, then one prepared stop -> start on the original ports; one outage) or second-handoff (hand off to the standby, then a second handoff back onto the original ports; port 6688 dark in between). See the bench in the README.",
    default: 'swap',
    boolean: false
  },
  {
    name: 'port-holder',
    description:
      "Published ports without a container start (upgrade, restart, handoff): true puts the node's network and published ports in a long-lived holder container '<container>-port-holder' (the node's own image, running only a wait) that the node's instances join, so every later run is a standby handoff on the same ports, as with host networking; the first run converts the node (one swap, rolled back on failure). false converts a node back to its own ports. Unset keeps the node's layout. See docs/port-holder.md.",
    default: '',
    boolean: true
  },
  {
    name: 'prefer-primary',
    description: "Failover pairs: hand leadership back to 'container' at the end.",
    default: 'false',
    boolean: true
  },
  {
    name: 'backup',
    description: 'Take a verified pg_dump of the node DB before changing anything.',
    default: 'true',
    boolean: true
  },
  {
    name: 'backup-dir',
    description: 'Directory on the host for backups.',
    default: '/var/lib/chainlink-rollout/backups',
    boolean: false
  },
  { name: 'backup-keep', description: 'How many verified backups of each kind to keep.', default: '7', boolean: false },
  {
    name: 'backup-recipient',
    description: 'age public key (age1...) to encrypt backups to; the host then cannot read them.',
    default: '',
    boolean: false
  },
  {
    name: 'backup-file',
    description:
      'Backup that restore restores (default the newest verified one). Must be inside backup-dir; relative to it.',
    default: '',
    boolean: false
  },
  {
    name: 'backup-verify',
    description:
      'How each backup is verified: archive (checksum and a full read of the dump) or restore (also a trial restore into a scratch database, with keystore counts).',
    default: 'archive',
    boolean: false
  },
  {
    name: 'backup-identity',
    description:
      'age secret key (AGE-SECRET-KEY-1...) to read encrypted backups for restore; pass it from a secret. Masked.',
    default: '',
    boolean: false
  },
  {
    name: 'stop-node',
    description: 'restore: stop the node containers first instead of refusing while a node holds the lock.',
    default: 'false',
    boolean: true
  },
  {
    name: 'restore-other-node',
    description:
      'restore: allow a backup whose manifest records another node (other keys, or another database or server) than the one restored; refused otherwise, before anything stops.',
    default: 'false',
    boolean: true
  },
  {
    name: 'db-copy-unchecked',
    description:
      "Allow a full copy of the database on its server (a directory backup's restore by swap, the migration rehearsal) when the server's free space cannot be known from this host. Otherwise such a restore runs in one transaction and a rehearsal is refused.",
    default: 'false',
    boolean: true
  },
  {
    name: 'dry-run',
    description: 'Print the plan and change nothing (result planned).',
    default: 'false',
    boolean: true
  },
  {
    name: 'state-dir',
    description:
      "Directory on the host for the journal and the node's metrics textfile (docs/metrics.md); the host lock is taken there and host-wide, in /run/lock, so runs with another state-dir are kept out.",
    default: '/var/lib/chainlink-rollout',
    boolean: false
  },
  {
    name: 'lock-timeout',
    description: 'How long to wait for another chainlink-rollout operation on this node to finish.',
    default: '15m',
    boolean: false
  },
  {
    name: 'docker-host',
    description:
      'Docker Engine address (default DOCKER_HOST or unix:///var/run/docker.sock). tcp:// uses TLS when DOCKER_TLS_VERIFY is set (certificates in DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem).',
    default: '',
    boolean: false
  },
  {
    name: 'docker-insecure-tcp',
    description:
      "Accept plain TCP (no TLS) to a Docker Engine that is not on this host. Default: refused, since the Docker API is root on the node's host.",
    default: 'false',
    boolean: true
  },
  {
    name: 'allowed-repositories',
    description:
      'Repositories a target image may come from besides the one the node runs (comma or newline separated; * matches within a path component, ** across them, e.g. ghcr.io/my-org/*). Any other repository is refused before anything changes.',
    default: '',
    boolean: false
  },
  {
    name: 'backup-secrets-plain',
    description:
      "Store the node's secrets files (secrets TOML, API credentials and password files) in backups that are not encrypted (no backup-recipient). Default: unencrypted backups leave them out.",
    default: 'false',
    boolean: true
  },
  {
    name: 'retry-quarantined',
    description:
      'Upgrade to a digest although an earlier upgrade to it rolled back (it is quarantined in state-dir and refused otherwise; `status` lists quarantined digests).',
    default: 'false',
    boolean: true
  },
  {
    name: 'allow-downgrade',
    description:
      "Let an upgrade go to an image older than the version the database records (`node_versions`). Refused otherwise: the older binary would refuse to start on the newer database (the node's version gate). With it, the running (newer) image's `node db rollback` brings the database to the older version's last migration first (the older image's `node db status` names it), then the older image takes over through the same standby, handoff and gates; a failure brings the newer image back, which migrates the database up again.",
    default: 'false',
    boolean: true
  },
  {
    name: 'window',
    description:
      'Upgrade only inside this window, e.g. "Mon-Fri 08:00-18:00 Europe/Berlin" (days, HH:MM-HH:MM, IANA zone, UTC when left out; several separated by commas). Outside it an upgrade changes nothing and ends with result `deferred` (exit 0), naming when the window opens. Empty: any time.',
    default: '',
    boolean: false
  },
  {
    name: 'rehearse-migration',
    description:
      "Before the live handoff, restore the pre-upgrade backup into a scratch database on the same server and run the new image's `node db migrate` (no node start, no lock) against it in a throwaway container; a failure refuses the upgrade with the node untouched, the duration is reported as the expected start-up time. The scratch database is dropped. Needs `backup: true`.",
    default: 'false',
    boolean: true
  },
  {
    name: 'allow-other-updaters',
    description:
      'Go on although another updater acts on the node: a Watchtower container watching it, the `io.containers.autoupdate` label (podman auto-update), an autoheal watchdog restarting it when unhealthy. Refused otherwise, naming it, before anything changes (docs/other-updaters.md); they are then only warned about.',
    default: 'false',
    boolean: true
  },
  {
    name: 'webhook-url',
    description:
      'http(s) URL that gets one JSON document per run, POSTed at its end (result, outputs, timeline, gates, image digests; never a secret), with a 5 s timeout. Failing to deliver it is a warning, not a failed run. Masked: a webhook URL often carries its token.',
    default: '',
    boolean: false
  }
]
