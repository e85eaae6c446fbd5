import { describe, expect, it } from '@jest/globals'
import { EventEmitter } from 'node:events'
import { bounded, DockerClient } from '../../../src/docker/client.js'

const never = () => new Promise<never>(() => undefined)

describe('every wait on Docker is bounded and cancellable', () => {
  it('bounded: an answer in time passes through', async () => {
    await expect(bounded(Promise.resolve(7), 1000, 'x')).resolves.toBe(7)
  })

  it('bounded: no answer within the bound is an error naming the wait', async () => {
    await expect(bounded(never(), 50, 'docker stop of abc')).rejects.toThrow(/docker stop of abc did not finish/)
  })

  it('bounded: a cancellation ends the wait at once', async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 20)
    await expect(bounded(never(), 60_000, 'db rollback', ac.signal)).rejects.toThrow(/cancelled/)
  })

  function fakeDocker(api: unknown): DockerClient {
    const d = new DockerClient('unix:///nonexistent.sock')
    ;(d as unknown as { api: unknown }).api = api
    return d
  }

  it('a pull that makes no progress fails after the stall bound, and is cancellable', async () => {
    const stream = new EventEmitter()
    const api = {
      pull: async () => stream,
      modem: { followProgress: () => undefined }
    }
    const d = fakeDocker(api)
    await expect(d.pull({ path: 'smartcontract/chainlink', tag: '2.19.0' }, undefined, 50)).rejects.toThrow(
      /made no progress/
    )
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 20)
    await expect(d.pull({ path: 'smartcontract/chainlink', tag: '2.19.0' }, ac.signal, 60_000)).rejects.toThrow(
      /aborted/
    )
  })

  it('a pull that keeps progressing is not cut by the stall bound', async () => {
    const api = {
      pull: async () => new EventEmitter(),
      modem: {
        followProgress: (_s: unknown, done: (e: null, out: unknown[]) => void, progress: () => void) => {
          let n = 0
          const t = setInterval(() => {
            progress()
            if (++n === 6) {
              clearInterval(t)
              done(null, [])
            }
          }, 20)
        }
      }
    }
    await expect(
      fakeDocker(api).pull({ path: 'smartcontract/chainlink', tag: '2.19.0' }, undefined, 60)
    ).resolves.toBeUndefined()
  })

  it('a one-off container (db rollback) is removed when the run is cancelled', async () => {
    const removed: string[] = []
    const api = {
      createContainer: async () => ({ id: 'c1' }),
      getContainer: (id: string) => ({
        start: async () => undefined,
        wait: never,
        remove: async () => void removed.push(id)
      })
    }
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 20)
    await expect(fakeDocker(api).runOnce({ name: 'x-db-rollback-1' }, 60_000, ac.signal)).rejects.toThrow(/cancelled/)
    expect(removed).toEqual(['c1'])
  })
})
