import { describe, expect, test } from '@jest/globals'
import { failure } from '../../src/edge/action.js'
import { AbortedError, ActionError, OperationError } from '../../src/errors.js'
import { ImageFileError, ImageReferenceError } from '../../src/image/file.js'
import { InputError } from '../../src/inputs/read.js'
import { BackupError } from '../../src/backup/pgtools.js'

describe('one error base the edge knows', () => {
  test.each([
    ['InputError', new InputError('image', 'is empty')],
    ['OperationError', new OperationError('no single leader')],
    ['AbortedError', new AbortedError()],
    ['ImageFileError', new ImageFileError('versions.env: line 3: no reference')],
    ['ImageReferenceError', new ImageReferenceError('malformed image reference "x"')],
    ['BackupError', new BackupError('pg_dump: exit 1')]
  ])('%s is an ActionError, printed as its plain sentence', (name, e) => {
    expect(e).toBeInstanceOf(ActionError)
    expect(e.name).toBe(name)
    expect(failure(e)).toBe(e.message)
  })

  test('an input error names its input', () => {
    const e = new InputError('lock-mode', "must be one of 'auto', 'lease'")
    expect(e.input).toBe('lock-mode')
    expect(e.message).toBe("Input 'lock-mode' must be one of 'auto', 'lease'")
  })

  test('a cancellation reads as cancelled', () => {
    expect(failure(new AbortedError())).toBe('cancelled')
  })
})
