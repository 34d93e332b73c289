/** Gets the tools tempoflow runs against: the Temporal CLI (dev server) and versitygw (S3), built when missing. */
import { ensureTool, S3_SERVER, TEMPORAL_CLI } from '../services/toolchain';

const log = (message: string) => console.log(message);
for (const tool of [TEMPORAL_CLI, S3_SERVER]) {
  try {
    console.log(`${tool.name}: ${await ensureTool(tool, log)}`);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
