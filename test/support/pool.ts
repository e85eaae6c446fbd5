// A bound on the tests of one file that run side by side (`test.concurrent`): jest's own bound
// (maxConcurrency, jest.config.js) is set high, so that each file decides how many of its tests
// run at once, and which resource (a dedicated daemon, a Postgres cluster) each one holds.
// jest starts a concurrent test's timeout when it lets the test in, queue included: a file whose
// tests queue here gives them a long jest timeout and bounds each one here, from its start.

/**
 * At most `size` jobs at once, in the order they were submitted, each told the slot (0..size-1)
 * it holds. With `runMs`, a job still running that long after it started fails (its slot is
 * given back only when it ends: the resource stays its own).
 */
export function pool(size: number, runMs?: number): <T>(fn: (slot: number) => Promise<T>) => Promise<T> {
  const free = Array.from({ length: size }, (_, i) => i)
  const waiting: ((slot: number) => void)[] = []
  return async <T>(fn: (slot: number) => Promise<T>): Promise<T> => {
    const slot = free.length ? free.shift()! : await new Promise<number>((res) => waiting.push(res))
    const release = () => {
      const next = waiting.shift()
      if (next) next(slot)
      else free.push(slot)
    }
    const job = (async () => fn(slot))()
    job.then(release, release)
    if (runMs === undefined) return job
    let timer: NodeJS.Timeout | undefined
    const over = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running ${runMs} ms after it started`)), runMs)
    })
    try {
      return await Promise.race([job, over])
    } finally {
      clearTimeout(timer)
    }
  }
}
