// Integration tests drive real containers (boots, lease expiries): give them room. A test that
// fails is run again up to twice, its first errors logged: on a 2-core machine a boot or a
// lease poll can miss a deadline under load; a defect fails all three tries.
import { jest } from '@jest/globals'
jest.setTimeout(240_000)
jest.retryTimes(2, { logErrorsBeforeRetry: true })
