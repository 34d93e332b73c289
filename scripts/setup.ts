/** `npm run setup`: gets the tools tempoflow runs against, building them into the cache when missing. */
import { ensureTemporalCli } from '../services/temporal-cli';
import { ensureTool, S3_SERVER } from '../services/toolchain';

const log = (message: string) => console.log(message);
try {
  console.log(`temporal: ${await ensureTemporalCli({ log })}`);
  console.log(`versitygw: ${await ensureTool(S3_SERVER, log)}`);
} catch (err) {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exit(1);
}
