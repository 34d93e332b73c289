/** The task output size limit, shared by the activity side (worker) and the runner workflow (pure: no node APIs). */
import type { Json, TaskError } from './types';

/** Task outputs cross the workflow history; anything larger belongs in object storage, passed by URI. */
export const MAX_OUTPUT_BYTES = 256 * 1024;

/** Bytes of `text` in UTF-8 (what the history stores), without Buffer or TextEncoder so workflow code can use it. */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4; // a surrogate pair: one code point above U+FFFF
        i++;
      } else bytes += 3;
    } else bytes += 3; // includes a lone surrogate, which JSON.stringify escapes anyway
  }
  return bytes;
}

/** The error for an output over the limit, or undefined when it fits. */
export function checkOutputSize(taskId: string, output: Json): TaskError | undefined {
  const size = utf8ByteLength(JSON.stringify(output) ?? 'null');
  if (size <= MAX_OUTPUT_BYTES) return undefined;
  return {
    message: `task '${taskId}' returned ${Math.round(size / 1024)} KiB of output, over the ${MAX_OUTPUT_BYTES / 1024} KiB limit: write the data to object storage and return its URI`,
    type: 'TaskOutputTooLarge',
  };
}
