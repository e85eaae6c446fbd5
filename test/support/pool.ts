// A bound on the tests of one file that run side by side (`test.concurrent`): jest's own bound
// (maxConcurrency, jest.config.js) is set high, so that each file decides how many of its tests
// run at once, and which resource (a dedicated daemon, a Postgres cluster) each one holds.

/** At most `size` jobs at once, in the order they were submitted, each told the slot (0..size-1) it holds. */
export function pool(size: number): <T>(fn: (slot: number) => Promise<T>) => Promise<T> {
  const free = Array.from({ length: size }, (_, i) => i)
  const waiting: ((slot: number) => void)[] = []
  return async <T>(fn: (slot: number) => Promise<T>): Promise<T> => {
    const slot = free.length ? free.shift()! : await new Promise<number>((res) => waiting.push(res))
    try {
      return await fn(slot)
    } finally {
      const next = waiting.shift()
      if (next) next(slot)
      else free.push(slot)
    }
  }
}
