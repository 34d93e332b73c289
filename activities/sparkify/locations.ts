import { canonicalUri } from '../../storage/uri';

/** How location `a` relates to location `b`. */
export type Overlap = 'same' | 'inside' | 'contains';

/**
 * Whether two storage locations overlap, compared in their canonical spelling (`canonicalUri`: scheme aliases,
 * trailing slashes, relative vs absolute and symlinked local paths): `a` is the `same` as `b`, `inside` it, or
 * `contains` it; undefined when neither holds. Segment-wise: `s3://b/in` does not contain `s3://b/input`.
 */
export function locationOverlap(a: string, b: string): Overlap | undefined {
  const [ca, cb] = [canonicalUri(a), canonicalUri(b)];
  if (ca === cb) return 'same';
  const under = (child: string, parent: string) => child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
  if (under(ca, cb)) return 'inside';
  if (under(cb, ca)) return 'contains';
  return undefined;
}

/**
 * Why a run must not read `input` and publish to `output`, or undefined when they are apart. A lake that is,
 * is inside, or contains its input could have publish replace or delete input files, or a run read lake files
 * as input (tried: `input=/x/songs output=/x` deleted input files at publish). Also names a location that is not one tempoflow can read. The same message on the
 * client (before a run starts) and on the worker (`list_inputs`, for runs a schedule or backfill starts).
 */
export function inputOutputProblem(input: string, output: string): string | undefined {
  for (const [name, uri] of [
    ['input', input],
    ['output', output],
  ] as const) {
    try {
      canonicalUri(uri);
    } catch (err) {
      return `param '${name}': ${(err as Error).message}`;
    }
  }
  const overlap = locationOverlap(output, input);
  if (!overlap) return undefined;
  const spelled = (uri: string) => {
    const canonical = canonicalUri(uri);
    return canonical === uri ? `'${uri}'` : `'${uri}' (${canonical})`;
  };
  const relation = { same: 'is the same location as', inside: 'is inside', contains: 'contains' }[overlap];
  return (
    `param 'output' ${spelled(output)} ${relation} param 'input' ${spelled(input)}: the lake must not overlap ` +
    `its input (publish replaces and deletes files under the output; a run reads what is under the input)`
  );
}
