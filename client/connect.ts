/** Connecting the CLI to Temporal, with errors a user can act on instead of gRPC stack traces. */
import net from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { TempoflowError } from '../core/errors';
import type { TemporalConnectionConfig } from '../worker/temporal-config';

/** Temporal is not reachable at the configured address: a user error (exit 2), with the way out. */
export class TemporalUnreachableError extends TempoflowError {
  override name = 'TemporalUnreachableError';
  constructor(address: string, reason: string, options?: { cause?: unknown }) {
    super(
      `cannot reach Temporal at ${address} (${reason}): start one with \`tempoflow dev\` or set TEMPORAL_ADDRESS (or --address)`,
      options,
    );
  }
}

/** Fails fast with a clear reason when nothing listens at `address` (gRPC would retry until its deadline). */
export async function probeAddress(address: string, timeoutMs = 3000): Promise<void> {
  const match = /^(.*):(\d+)$/.exec(address);
  if (!match) throw new TempoflowError(`Temporal address '${address}' must be host:port, e.g. 127.0.0.1:7233`);
  const host = match[1]!.replace(/^\[(.*)\]$/, '$1');
  const port = Number(match[2]);
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TemporalUnreachableError(address, `no answer within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.end();
      socket.destroy();
      resolve();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const reason =
        err.code === 'ECONNREFUSED'
          ? 'connection refused'
          : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
            ? `unknown host '${host}'`
            : (err.code ?? err.message);
      reject(new TemporalUnreachableError(address, reason, { cause: err }));
    });
  });
}

export interface Connected {
  client: Client;
  connection: Connection;
}

/** Temporal answers at the address but the TLS handshake or the credentials are refused. */
export class TemporalConnectionRefusedError extends TempoflowError {
  override name = 'TemporalConnectionRefusedError';
}

/**
 * Connects a client with the resolved connection (TLS, API key): probes the address first, then opens the gRPC
 * connection, whose first call makes a refused certificate or key show here rather than in the command.
 */
export async function connectClient(temporal: TemporalConnectionConfig): Promise<Connected> {
  const { address, namespace } = temporal;
  await probeAddress(address);
  const secured = temporal.summary.tls !== 'off' || temporal.summary.apiKey;
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporal.connectionOptions(), connectTimeout: '5s' });
  } catch (err) {
    if (!secured) throw new TemporalUnreachableError(address, (err as Error).message, { cause: err });
    throw new TemporalConnectionRefusedError(
      `cannot connect to Temporal at ${temporal.describe()}: ${(err as Error).message} ` +
        '(check TEMPORAL_TLS_*, TEMPORAL_API_KEY or the profile; see docs/production.md)',
      { cause: err },
    );
  }
  return { client: new Client({ connection, namespace }), connection };
}

/** True for the errors a NativeConnection (worker) gives when nothing listens at the address. */
export function isConnectionRefused(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /ConnectionRefused|Connection refused|ECONNREFUSED|tcp connect error|dns error/i.test(message);
}
