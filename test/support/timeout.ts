// Integration tests drive real containers (boots, lease expiries): give them room.
import { jest } from '@jest/globals'
jest.setTimeout(240_000)
