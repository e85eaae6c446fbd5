import { describe, expect, test } from '@jest/globals'
import { decideRepair, type RepairDecision } from '../../../src/operations/repair.js'

const base = {
  rollingBack: false,
  complete: false,
  createdHolder: false,
  samePorts: true,
  pair: false,
  gatePassed: false,
  previousLeads: false
}

describe('decideRepair: from the journal and the evidence, never by discarding a serving leader', () => {
  test.each<[string, Partial<typeof base>, RepairDecision]>([
    ['every name in place, the new leader passes the gate', { complete: true, gatePassed: true }, 'finish'],
    ['every name in place but the gate fails', { complete: true, createdHolder: true }, 'rollback'],
    [
      'host network, killed during the gate: the new container leads and passes, the old name is still the stopped previous',
      { createdHolder: true, gatePassed: true },
      'finish-as-node'
    ],
    [
      'docs layout, the interim leader on spare ports leads: not the node as it was',
      { createdHolder: true, gatePassed: true, samePorts: false },
      'rollback'
    ],
    [
      'a pair whose new container leads, names not in place',
      { createdHolder: true, gatePassed: true, pair: true },
      'rollback'
    ],
    ['a created leader that fails the gate', { createdHolder: true }, 'rollback'],
    ['the original leader never stopped leading', { previousLeads: true }, 'undo'],
    ['nobody leads', {}, 'rollback'],
    [
      'the run had decided to roll back: rolled back whatever leads now',
      { rollingBack: true, createdHolder: true, gatePassed: true, complete: true },
      'rollback'
    ]
  ])('%s', (_what, o, want) => {
    expect(decideRepair({ ...base, ...o })).toBe(want)
  })
})
