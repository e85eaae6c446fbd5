// operation: upgrade (design.md steps 0-8): preflight changes nothing; same digest is
// `unchanged`; then a single node or a failover pair is rolled onto the target image.
import { readFileSync } from 'node:fs'
import type { Context, OperationResult } from '../context.js'
import { OperationError } from '../context.js'
import { digestFor, type ImageInfo } from '../docker.js'
import { readDesiredImage } from '../image-file.js'
import { formatRef, parseImageRef, repository, repoTag, type ImageRef } from '../image-ref.js'
import { planText, rollPair, rollSingle, withNode, type Change } from '../rollout.js'
import { checkDbRollbackInputs } from '../rollback.js'

export { SUFFIX_NEXT, SUFFIX_PREVIOUS } from '../rollout.js'

/** The target from `image`, or from the desired-state file in the operator's repo. */
export function targetRef(ctx: Context): ImageRef {
  const { inputs } = ctx
  if (inputs.image) return inputs.image
  let text: string
  try {
    text = readFileSync(inputs.imageFile!, 'utf8')
  } catch (e) {
    throw new OperationError(
      `Input 'image-file': cannot read ${inputs.imageFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`
    )
  }
  try {
    return parseImageRef(readDesiredImage(text, inputs.imageFile!).reference)
  } catch (e) {
    throw new OperationError(`Input 'image-file': ${(e as Error).message}`)
  }
}

/** Pulls the target and checks its digest; returns the image and the reference to create from. */
export async function resolveTarget(
  ctx: Context,
  ref: ImageRef
): Promise<{ image: ImageInfo; createRef: string; digest?: string }> {
  const { docker, report } = ctx
  report.step('pull', formatRef(ref))
  try {
    await docker.pull(ref, ctx.signal)
  } catch (e) {
    // A pull can fail while the image is present locally (an air-gapped host); use it only then.
    const local = await docker.imageInfo(ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref))
    if (!local)
      throw new OperationError(`Input 'image': cannot pull ${formatRef(ref)}: ${(e as Error).message.split('\n')[0]}`)
    report.note(
      `Pull of ${formatRef(ref)} failed (${(e as Error).message.split('\n')[0]}); using the copy already on this host.`
    )
  }
  const image = await docker.imageInfo(ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref))
  if (!image) throw new OperationError(`Input 'image': ${formatRef(ref)} is not on this host after the pull`)
  const digest = digestFor(image, ref)
  if (ref.digest && digest !== ref.digest)
    throw new OperationError(
      `Input 'image': digest mismatch for ${formatRef(ref)}: the registry serves ${digest ?? 'an image without a digest'}`
    )
  // Create from the tag when it still names the pulled image (readable in `docker ps`).
  let createRef = ref.digest ? `${repository(ref)}@${ref.digest}` : repoTag(ref)
  if (ref.tag) {
    const byTag = await docker.imageInfo(repoTag(ref))
    if (byTag?.id === image.id) createRef = repoTag(ref)
  }
  return { image, createRef, digest }
}

export async function upgrade(ctx: Context): Promise<OperationResult> {
  const { inputs, docker, report } = ctx
  report.title = `chainlink-rollout upgrade of ${inputs.container}`
  const ref = targetRef(ctx)
  await checkDbRollbackInputs(inputs)
  return withNode(ctx, async (p) => {
    const target = await resolveTarget(ctx, ref)
    const display = `${repoTag(ref)}@${target.digest ?? target.image.id}`
    report.fact('Target', display)
    const outputs = { 'previous-image': p.leader.image, image: display, leader: p.leader.name }
    const onTarget = async (info: { Image: string }) => (await docker.imageInfo(info.Image))?.id === target.image.id
    if ((await onTarget(p.leader.info)) && (!p.other || (await onTarget(p.other.info)))) {
      report.step('unchanged', `'${p.leader.name}' already runs ${display}`)
      return {
        result: 'unchanged',
        ok: true,
        message: `'${p.leader.name}' already runs ${display}; nothing was restarted`,
        outputs
      }
    }
    const ch: Change = { operation: 'upgrade', createRef: target.createRef, display, backup: true }
    const plan = planText(p, ch, inputs.preferPrimary, inputs.finish)
    report.fact('Plan', plan)
    if (inputs.dryRun) {
      report.step('dry-run', 'nothing changed')
      return { result: 'planned', ok: true, message: `dry run: would ${plan}`, outputs }
    }
    return p.other ? rollPair(ctx, p, ch) : rollSingle(ctx, p, ch)
  })
}
