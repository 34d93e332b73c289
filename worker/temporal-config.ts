/**
 * Where Temporal is and how to reach it, from Temporal's standard environment configuration (the variables and
 * the TOML profile file that the `temporal` CLI and every SDK read): `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
 * `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`, `TEMPORAL_GRPC_META_*`, `TEMPORAL_PROFILE`, `TEMPORAL_CONFIG_FILE`.
 * `@temporalio/envconfig` does the merging; this module adds tempoflow's precedence (flags first), defaults and
 * errors that name the variable or file a bad value came from. Used by the CLI and the worker alike.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { ClientConfigProfile, ClientConfigTLS, ConfigDataSource } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { TempoflowError } from '../core/errors';
// settings.ts owns the defaults and imports this module: the two refer to each other only inside functions.
import { DEFAULT_ADDRESS, DEFAULT_NAMESPACE } from './settings';

/** What `Connection.connect` (client) and `NativeConnection.connect` (worker) both take. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

/** The connection settings as they may be shown: no API key, no key material. */
export interface TemporalConnectionSummary {
  address: string;
  namespace: string;
  tls: 'off' | 'on' | 'mtls';
  apiKey: boolean;
  /** Where the settings came from, e.g. `profile 'prod' of /home/me/.config/temporalio/temporal.toml`. */
  source: string;
}

/**
 * A resolved connection. The API key and the key material live in a private field, so printing, logging or
 * JSON-encoding the object (or anything holding it, such as the worker settings) never shows them.
 */
export class TemporalConnectionConfig {
  readonly address: string;
  readonly namespace: string;
  readonly summary: TemporalConnectionSummary;
  readonly #options: TemporalConnectionOptions;

  constructor(namespace: string, options: TemporalConnectionOptions, source = 'flags') {
    this.address = options.address;
    this.namespace = namespace;
    this.#options = options;
    const tls = options.tls;
    this.summary = {
      address: options.address,
      namespace,
      tls: !tls ? 'off' : typeof tls === 'object' && tls.clientCertPair ? 'mtls' : 'on',
      apiKey: options.apiKey !== undefined,
      source,
    };
  }

  /** A plain connection (no TLS, no credentials): the local dev servers tempoflow starts. */
  static plain(address: string, namespace: string): TemporalConnectionConfig {
    return new TemporalConnectionConfig(namespace, { address }, 'local server');
  }

  /** Options for `Connection.connect` / `NativeConnection.connect` (a fresh object, with the secrets). */
  connectionOptions(): TemporalConnectionOptions {
    return { ...this.#options };
  }

  /** One line for logs: address, namespace, TLS and whether an API key is used (never the key). */
  describe(): string {
    const { tls, apiKey } = this.summary;
    const security = [tls === 'mtls' ? 'mTLS' : tls === 'on' ? 'TLS' : '', apiKey ? 'API key' : '']
      .filter(Boolean)
      .join(' + ');
    return `${this.address}${security ? ` (${security})` : ''} · namespace ${this.namespace}`;
  }

  toJSON(): TemporalConnectionSummary {
    return this.summary;
  }

  [inspect.custom](): string {
    return `TemporalConnectionConfig ${inspect(this.summary)}`;
  }
}

/** The global `--address` / `--namespace` flags, which win over the environment and the profile. */
export interface TemporalFlagOverrides {
  address?: string;
  namespace?: string;
}

const TLS_FILES = [
  { field: 'clientCert', env: 'TEMPORAL_TLS_CLIENT_CERT_PATH', key: 'client_cert_path' },
  { field: 'clientKey', env: 'TEMPORAL_TLS_CLIENT_KEY_PATH', key: 'client_key_path' },
  { field: 'serverCACert', env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', key: 'server_ca_cert_path' },
] as const satisfies readonly { field: keyof ClientConfigTLS; env: string; key: string }[];

const ADDRESS_PATTERN = /^[^\s:/]+:\d{1,5}$/;

/**
 * Resolves the connection to Temporal. Precedence: flag, then environment variable, then the profile
 * (`TEMPORAL_PROFILE`, default `default`) of the config file (`TEMPORAL_CONFIG_FILE`, default
 * `~/.config/temporalio/temporal.toml`, which may be absent), then the defaults (127.0.0.1:7233, `default`).
 * TLS is on when any TLS setting or an API key is given, unless `TEMPORAL_TLS=false`. Certificate and key files
 * are read here, so a wrong path fails at start naming the variable (or profile key) that holds it.
 *
 * @throws TempoflowError naming the flag, variable, file or profile at fault.
 */
export function resolveTemporalConfig(
  flags: TemporalFlagOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): TemporalConnectionConfig {
  // Unset and empty are the same to a shell user; envconfig would take '' as a value.
  const vars = Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] =>
        typeof entry[1] === 'string' && (entry[1] !== '' || entry[0].startsWith('TEMPORAL_GRPC_META_')),
    ),
  );
  const tlsFlag = vars.TEMPORAL_TLS;
  if (tlsFlag !== undefined) {
    if (/^(1|true)$/i.test(tlsFlag)) vars.TEMPORAL_TLS = 'true';
    else if (/^(0|false)$/i.test(tlsFlag)) vars.TEMPORAL_TLS = 'false';
    else throw new TempoflowError(`TEMPORAL_TLS ${JSON.stringify(tlsFlag)}: must be true or false`);
  }

  const file = configFile(vars);
  const profileName = vars.TEMPORAL_PROFILE ?? 'default';
  const where = file ? `profile '${profileName}' of ${file.path}` : undefined;
  if (!file && vars.TEMPORAL_PROFILE) {
    const looked = defaultConfigFilePath(vars);
    throw new TempoflowError(
      `TEMPORAL_PROFILE '${profileName}': no Temporal config file${looked ? ` at ${looked}` : ''} (set TEMPORAL_CONFIG_FILE)`,
    );
  }
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({
      ...(file ? { configSource: { data: file.data } } : { disableFile: true }),
      // Named only when asked for: a file without [profile.default] is fine, a missing named profile is not.
      ...(vars.TEMPORAL_PROFILE ? { profile: vars.TEMPORAL_PROFILE } : {}),
      overrideEnvVars: vars,
    });
  } catch (err) {
    const reason = (err as Error).message;
    if (file && /^Profile '.*' not found/.test(reason))
      throw new TempoflowError(`TEMPORAL_PROFILE '${profileName}': no [profile.${profileName}] in ${file.path}`, {
        cause: err,
      });
    // TOML syntax errors (with line and column), a *_path given with its *_data, …
    throw new TempoflowError(`Temporal configuration (${file ? file.path : 'environment'}): ${reason}`, {
      cause: err,
    });
  }

  const address = pick('address', flags.address, '--address', vars.TEMPORAL_ADDRESS, profile.address, where);
  const namespace = pick(
    'namespace',
    flags.namespace,
    '--namespace',
    vars.TEMPORAL_NAMESPACE,
    profile.namespace,
    where,
  );
  if (!ADDRESS_PATTERN.test(address.value))
    throw new TempoflowError(
      `${address.source} ${JSON.stringify(address.value)}: must be host:port, e.g. '127.0.0.1:7233'`,
    );
  if (!namespace.value) throw new TempoflowError(`${namespace.source}: the namespace must not be empty`);

  const tls = profile.tls ? readTlsFiles(profile.tls, vars, where) : undefined;
  const { connectionOptions } = toClientOptions({ ...profile, ...(tls ? { tls } : {}) });
  const options: TemporalConnectionOptions = { address: address.value };
  if (connectionOptions.tls !== undefined && connectionOptions.tls !== null) options.tls = connectionOptions.tls;
  if (connectionOptions.apiKey !== undefined) options.apiKey = connectionOptions.apiKey;
  // Always strings here: they come from TEMPORAL_GRPC_META_* and the profile's [grpc_meta].
  if (profile.grpcMeta && Object.keys(profile.grpcMeta).length) options.metadata = profile.grpcMeta;
  return new TemporalConnectionConfig(namespace.value, options, where ?? 'environment');
}

function pick(
  what: 'address' | 'namespace',
  flag: string | undefined,
  flagName: string,
  fromEnv: string | undefined,
  fromProfile: string | undefined,
  where: string | undefined,
): { value: string; source: string } {
  if (flag !== undefined) return { value: flag.trim(), source: flagName };
  if (fromEnv !== undefined) return { value: fromEnv.trim(), source: `TEMPORAL_${what.toUpperCase()}` };
  if (fromProfile !== undefined) return { value: String(fromProfile).trim(), source: `${what} in ${where}` };
  return { value: what === 'address' ? DEFAULT_ADDRESS : DEFAULT_NAMESPACE, source: 'default' };
}

/**
 * Reads the certificate and key files now (envconfig would read them later with a bare ENOENT), and checks
 * that a client certificate comes with its key.
 */
function readTlsFiles(tls: ClientConfigTLS, vars: Record<string, string>, where: string | undefined): ClientConfigTLS {
  const resolved: ClientConfigTLS = { ...tls };
  const origin = (file: (typeof TLS_FILES)[number]) =>
    vars[file.env] !== undefined ? file.env : `${file.key} in ${where ?? 'the config file'}`;
  for (const file of TLS_FILES) {
    const source: ConfigDataSource | undefined = tls[file.field];
    if (!source || !('path' in source)) continue;
    try {
      resolved[file.field] = { data: readFileSync(source.path) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const reason =
        code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable');
      throw new TempoflowError(`${origin(file)}: cannot read '${source.path}' (${reason})`, { cause: err });
    }
  }
  if (!tls.disabled && Boolean(tls.clientCert) !== Boolean(tls.clientKey)) {
    const [given, missing] = tls.clientCert ? [TLS_FILES[0], TLS_FILES[1]] : [TLS_FILES[1], TLS_FILES[0]];
    throw new TempoflowError(
      `${origin(given)} is set but not ${missing.env} (or ${missing.key}): mTLS needs both the client certificate and its key`,
    );
  }
  return resolved;
}

/** The profile file: `TEMPORAL_CONFIG_FILE` (must exist) or the default location (may be absent). */
function configFile(vars: Record<string, string>): { path: string; data: string } | undefined {
  const explicit = vars.TEMPORAL_CONFIG_FILE;
  const filePath = explicit ?? defaultConfigFilePath(vars);
  if (!filePath) return undefined;
  try {
    return { path: filePath, data: readFileSync(filePath, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') return undefined;
    throw new TempoflowError(
      `${explicit ? 'TEMPORAL_CONFIG_FILE' : 'Temporal config file'}: cannot read '${filePath}' (${code === 'ENOENT' ? 'no such file' : (code ?? 'unreadable')})`,
      { cause: err },
    );
  }
}

/** Where the `temporal` CLI and the SDKs look for the profile file when TEMPORAL_CONFIG_FILE is unset. */
export function defaultConfigFilePath(vars: Record<string, string | undefined>): string | undefined {
  if (process.platform === 'win32') return vars.APPDATA && path.join(vars.APPDATA, 'temporalio', 'temporal.toml');
  if (process.platform === 'darwin')
    return vars.HOME && path.join(vars.HOME, 'Library', 'Application Support', 'temporalio', 'temporal.toml');
  const xdg = vars.XDG_CONFIG_HOME;
  if (xdg) return path.isAbsolute(xdg) ? path.join(xdg, 'temporalio', 'temporal.toml') : undefined;
  return vars.HOME && path.join(vars.HOME, '.config', 'temporalio', 'temporal.toml');
}
