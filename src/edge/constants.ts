// The names the runner carries between the main and post steps, in one place (as
// actions/setup-node's constants.ts): no string literal for a state key or an output name.

/** Keys of the runner state shared by main and post (strings only). */
export enum State {
  /** set by main, so the second run of the same bundle knows it is the post step */
  IsPost = 'isPost',
  /** the journal run this job opened: its post step repairs that run only */
  RunId = 'run-id',
  /** that run's journal file (its name is the node's DB key, known once the run read its DB) */
  Journal = 'journal'
}
