/**
 * Connecting to a production Temporal through Temporal's environment configuration: the options resolved from
 * the variables and the profile file, the CLI against the harness's dev server through them, and mTLS for real
 * (the dev server speaks no TLS, so a TLS-terminating proxy that demands a client certificate stands in front
 * of it; certificates made by openssl at test time).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TLSConfig } from '@temporalio/client';
import { TempoflowError } from '../core/errors';
import { resolveWorkerSettings } from '../worker/settings';
import { resolveTemporalConfig } from '../worker/temporal-config';
import { testServices } from './services';

const BIN = fileURLToPath(new URL('../bin/tempoflow.js', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const dir = mkdtempSync(path.join(os.tmpdir(), 'tempoflow-temporal-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An environment with no config file of the developer's: XDG_CONFIG_HOME points at an empty folder. */
const emptyConfigHome = path.join(dir, 'empty-config-home');
mkdirSync(emptyConfigHome);
const isolated = (vars: Record<string, string>): NodeJS.ProcessEnv => ({ XDG_CONFIG_HOME: emptyConfigHome, ...vars });

function file(name: string, contents: string): string {
  const filePath = path.join(dir, name);
  writeFileSync(filePath, contents);
  return filePath;
}

function tlsObject(value: TLSConfig | boolean | undefined): TLSConfig {
  assert.ok(value && typeof value === 'object', `expected a TLS config, got ${JSON.stringify(value)}`);
  return value;
}

void describe('resolving the Temporal connection', () => {
  const cert = file('client.pem', 'CLIENT CERT');
  const key = file('client.key', 'CLIENT KEY');
  const ca = file('ca.pem', 'SERVER CA');

  void test('TLS variables: the files are read into the client pair, the CA and the server name', () => {
    const config = resolveTemporalConfig(
      {},
      isolated({
        TEMPORAL_ADDRESS: 'temporal.example.com:7233',
        TEMPORAL_NAMESPACE: 'payments',
        TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: key,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
        TEMPORAL_TLS_SERVER_NAME: 'frontend.internal',
      }),
    );
    const options = config.connectionOptions();
    assert.equal(options.address, 'temporal.example.com:7233');
    assert.equal(config.namespace, 'payments');
    const tlsConfig = tlsObject(options.tls);
    assert.equal(Buffer.from(tlsConfig.clientCertPair!.crt).toString(), 'CLIENT CERT');
    assert.equal(Buffer.from(tlsConfig.clientCertPair!.key).toString(), 'CLIENT KEY');
    assert.equal(Buffer.from(tlsConfig.serverRootCACertificate!).toString(), 'SERVER CA');
    assert.equal(tlsConfig.serverNameOverride, 'frontend.internal');
    assert.equal(options.apiKey, undefined);
    assert.equal(config.describe(), 'temporal.example.com:7233 (mTLS) · namespace payments');
  });

  void test('an API key turns TLS on; the key shows in no log line, JSON or inspection', () => {
    const secret = 'tmprl-api-key-ABCDEF123456';
    const env = isolated({
      TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233',
      TEMPORAL_NAMESPACE: 'prod.a1b2c',
      TEMPORAL_API_KEY: secret,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
    });
    const config = resolveTemporalConfig({}, env);
    assert.equal(config.connectionOptions().apiKey, secret);
    assert.ok(config.connectionOptions().tls);
    const settings = resolveWorkerSettings({}, env);
    for (const shown of [
      config.describe(),
      JSON.stringify(config),
      inspect(config, { depth: 10, showHidden: true }),
      JSON.stringify(settings),
      inspect(settings, { depth: 10, showHidden: true }),
    ]) {
      assert.doesNotMatch(shown, new RegExp(secret));
      assert.doesNotMatch(shown, /CLIENT KEY/);
    }
    assert.match(config.describe(), /\(mTLS \+ API key\)/);

    // An API key alone: TLS with the system's CAs; TEMPORAL_TLS=false turns it off (a plaintext proxy).
    const keyOnly = resolveTemporalConfig({}, isolated({ TEMPORAL_API_KEY: secret }));
    assert.equal(keyOnly.connectionOptions().tls, true);
    const plain = resolveTemporalConfig({}, isolated({ TEMPORAL_API_KEY: secret, TEMPORAL_TLS: 'false' }));
    assert.equal(plain.connectionOptions().tls, false);
    assert.equal(plain.connectionOptions().apiKey, secret);
  });

  void test('nothing set: the local defaults, no TLS', () => {
    const config = resolveTemporalConfig({}, isolated({}));
    assert.deepEqual(config.connectionOptions(), { address: '127.0.0.1:7233' });
    assert.equal(config.namespace, 'default');
    // Empty variables count as unset.
    assert.equal(resolveTemporalConfig({}, isolated({ TEMPORAL_ADDRESS: '' })).address, '127.0.0.1:7233');
  });

  void test('profiles: TEMPORAL_PROFILE picks one from TEMPORAL_CONFIG_FILE; flags beat variables beat the profile', () => {
    const configFile = file(
      'temporal.toml',
      `[profile.default]
address = "default.example.com:7233"

[profile.prod]
address = "prod.example.com:7233"
namespace = "prod-ns"
api_key = "profile-key"

[profile.prod.tls]
client_cert_path = "${cert}"
client_key_path = "${key}"
server_name = "prod.internal"

[profile.prod.grpc_meta]
x-team = "data"
`,
    );
    const base = isolated({ TEMPORAL_CONFIG_FILE: configFile, TEMPORAL_PROFILE: 'prod' });
    const prod = resolveTemporalConfig({}, base);
    const options = prod.connectionOptions();
    assert.equal(options.address, 'prod.example.com:7233');
    assert.equal(prod.namespace, 'prod-ns');
    assert.equal(options.apiKey, 'profile-key');
    assert.deepEqual(options.metadata, { 'x-team': 'data' });
    const tlsConfig = tlsObject(options.tls);
    assert.equal(Buffer.from(tlsConfig.clientCertPair!.crt).toString(), 'CLIENT CERT');
    assert.equal(tlsConfig.serverNameOverride, 'prod.internal');
    assert.equal(prod.summary.source, `profile 'prod' of ${configFile}`);

    const fromEnv = resolveTemporalConfig(
      {},
      { ...base, TEMPORAL_ADDRESS: 'env.example.com:7233', TEMPORAL_NAMESPACE: 'env-ns', TEMPORAL_API_KEY: 'env-key' },
    );
    assert.equal(fromEnv.address, 'env.example.com:7233');
    assert.equal(fromEnv.namespace, 'env-ns');
    assert.equal(fromEnv.connectionOptions().apiKey, 'env-key');

    const fromFlags = resolveTemporalConfig(
      { address: 'flag.example.com:7233', namespace: 'flag-ns' },
      { ...base, TEMPORAL_ADDRESS: 'env.example.com:7233', TEMPORAL_NAMESPACE: 'env-ns' },
    );
    assert.equal(fromFlags.address, 'flag.example.com:7233');
    assert.equal(fromFlags.namespace, 'flag-ns');
    // The worker settings follow the same order.
    const settings = resolveWorkerSettings({ address: 'flag.example.com:7233' }, base);
    assert.equal(settings.address, 'flag.example.com:7233');
    assert.equal(settings.namespace, 'prod-ns');
    assert.equal(settings.temporal.connectionOptions().apiKey, 'profile-key');

    // Without TEMPORAL_PROFILE: [profile.default]; from the default location under XDG_CONFIG_HOME too.
    assert.equal(
      resolveTemporalConfig({}, isolated({ TEMPORAL_CONFIG_FILE: configFile })).address,
      'default.example.com:7233',
    );
    const configHome = path.join(dir, 'config-home');
    mkdirSync(path.join(configHome, 'temporalio'), { recursive: true });
    writeFileSync(path.join(configHome, 'temporalio', 'temporal.toml'), readFileSync(configFile));
    const located = resolveTemporalConfig({}, { XDG_CONFIG_HOME: configHome, TEMPORAL_PROFILE: 'prod' });
    assert.equal(located.address, 'prod.example.com:7233');
  });

  void test('bad settings are TempoflowErrors naming the variable, the file or the profile', () => {
    const missing = path.join(dir, 'no-such-dir', 'client.pem');
    const expectError = (env: NodeJS.ProcessEnv, pattern: RegExp, flags = {}) =>
      assert.throws(
        () => resolveTemporalConfig(flags, env),
        (err: unknown) => err instanceof TempoflowError && pattern.test(err.message),
      );
    expectError(
      isolated({ TEMPORAL_TLS_CLIENT_CERT_PATH: missing, TEMPORAL_TLS_CLIENT_KEY_PATH: key }),
      new RegExp(`^TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read '${missing}' \\(no such file\\)$`),
    );
    expectError(
      isolated({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: missing }),
      /^TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read '.*no-such-dir\/client\.pem'/,
    );
    const profileFile = file('broken-paths.toml', `[profile.prod.tls]\nclient_key_path = "${missing}"\n`);
    expectError(
      isolated({ TEMPORAL_CONFIG_FILE: profileFile, TEMPORAL_PROFILE: 'prod' }),
      new RegExp(`^client_key_path in profile 'prod' of ${profileFile}: cannot read '${missing}'`),
    );
    expectError(
      isolated({ TEMPORAL_TLS_CLIENT_CERT_PATH: cert }),
      /TEMPORAL_TLS_CLIENT_CERT_PATH is set but not TEMPORAL_TLS_CLIENT_KEY_PATH/,
    );
    expectError(isolated({ TEMPORAL_TLS: 'yes' }), /^TEMPORAL_TLS "yes": must be true or false$/);
    expectError(
      isolated({ TEMPORAL_CONFIG_FILE: path.join(dir, 'absent.toml') }),
      /^TEMPORAL_CONFIG_FILE: cannot read '.*absent\.toml' \(no such file\)$/,
    );
    const configFile = file('one-profile.toml', '[profile.dev]\naddress = "localhost:7233"\n');
    expectError(
      isolated({ TEMPORAL_CONFIG_FILE: configFile, TEMPORAL_PROFILE: 'prod' }),
      new RegExp(`^TEMPORAL_PROFILE 'prod': no \\[profile\\.prod\\] in ${configFile}$`),
    );
    expectError(isolated({ TEMPORAL_PROFILE: 'prod' }), /^TEMPORAL_PROFILE 'prod': no Temporal config file at /);
    const broken = file('broken.toml', '[profile.default\naddress = 1\n');
    expectError(isolated({ TEMPORAL_CONFIG_FILE: broken }), new RegExp(`^Temporal configuration \\(${broken}\\): `));
    expectError(
      isolated({ TEMPORAL_ADDRESS: 'temporal.example.com' }),
      /^TEMPORAL_ADDRESS "temporal\.example\.com": must be host:port/,
    );
    expectError(isolated({}), /^--address "nope": must be host:port/, { address: 'nope' });
  });
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The harness's TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE are left out: each test says what the CLI gets.
 * No colours, no developer config file.
 */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: emptyConfigHome };
  for (const name of Object.keys(env))
    if (/^TEMPORAL_(ADDRESS|NAMESPACE|API_KEY|TLS|PROFILE|CONFIG_FILE|GRPC_META_)/.test(name)) delete env[name];
  delete env.FORCE_COLOR;
  delete env.DEBUG;
  return env;
}

function cli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...baseEnv(), ...env }, timeout: timeoutMs, maxBuffer: 10 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at .+\(.*:\d+:\d+\)$/m, `unexpected stack trace:\n${text}`);
}

function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

void describe('the CLI through the environment configuration', () => {
  let temporal: { address: string; namespace: string };
  before(async () => {
    ({ temporal } = await testServices());
  });

  void test('TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE reach the dev server', async () => {
    const env = { TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace };
    const dags = await cli(['dags', 'list'], env);
    assert.equal(dags.code, 0, dags.stderr);
    assert.match(dags.stdout, /^example_fanout\s/m);
    const runs = await cli(['runs', 'list', '--json'], env);
    assert.equal(runs.code, 0, runs.stderr);
    assert.ok(Array.isArray(JSON.parse(runs.stdout)));
  });

  void test('a profile file alone reaches it; --address beats TEMPORAL_ADDRESS', async () => {
    const configFile = file(
      'harness.toml',
      `[profile.harness]\naddress = "${temporal.address}"\nnamespace = "${temporal.namespace}"\n`,
    );
    const viaProfile = await cli(['runs', 'list', '--json'], {
      TEMPORAL_CONFIG_FILE: configFile,
      TEMPORAL_PROFILE: 'harness',
    });
    assert.equal(viaProfile.code, 0, viaProfile.stderr);

    const dead = `127.0.0.1:${await closedPort()}`;
    const flagWins = await cli(['--address', temporal.address, 'runs', 'list', '--json'], { TEMPORAL_ADDRESS: dead });
    assert.equal(flagWins.code, 0, flagWins.stderr);
    const flagLoses = await cli(['--address', dead, 'runs', 'list'], { TEMPORAL_ADDRESS: temporal.address });
    assert.equal(flagLoses.code, 2);
    assert.match(flagLoses.stderr, new RegExp(`cannot reach Temporal at ${dead} \\(connection refused\\)`));
  });

  void test('a missing certificate file: exit 2 naming the variable and the path, for commands and the worker', async () => {
    const missing = path.join(dir, 'missing', 'client.pem');
    const env = {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TLS_CLIENT_CERT_PATH: missing,
      TEMPORAL_TLS_CLIENT_KEY_PATH: missing.replace(/pem$/, 'key'),
    };
    for (const args of [['runs', 'list'], ['worker']]) {
      const { code, stdout, stderr } = await cli(args, env);
      assert.equal(code, 2, `${args.join(' ')}: ${stdout}\n${stderr}`);
      assert.match(stderr, new RegExp(`TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read '${missing}' \\(no such file\\)`));
      assertNoStack(stderr);
    }
    // Commands that need no server are not held up by it.
    assert.equal((await cli(['dags', 'list'], env)).code, 0);
  });

  void test('--local ignores production settings: its throwaway server is plain', { timeout: 240_000 }, async () => {
    const { code, stdout, stderr } = await cli(
      ['trigger', 'example_fanout', '--local', '-p', 'count=2'],
      {
        TEMPORAL_ADDRESS: 'prod.example.com:7233',
        TEMPORAL_API_KEY: 'not-for-the-local-server',
        TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'missing', 'client.pem'),
      },
      230_000,
    );
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /✔ example_fanout run succeeded in/);
  });
});

/** A CA, a server certificate for `serverName` and a client certificate, made by openssl. */
function makeCertificates(folder: string, serverName: string) {
  mkdirSync(folder, { recursive: true });
  const at = (name: string) => path.join(folder, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: folder, stdio: 'pipe' });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...newKey,
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=tempoflow test CA',
  );
  const sign = (name: string, cn: string, extensions: string) => {
    openssl('req', ...newKey, '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', `/CN=${cn}`);
    writeFileSync(at(`${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n${extensions}\n`);
    openssl(
      'x509',
      '-req',
      '-in',
      at(`${name}.csr`),
      '-CA',
      at('ca.pem'),
      '-CAkey',
      at('ca.key'),
      '-set_serial',
      String(Date.now()),
      '-days',
      '1',
      '-extfile',
      at(`${name}.ext`),
      '-out',
      at(`${name}.pem`),
    );
  };
  sign('server', serverName, `extendedKeyUsage=serverAuth\nsubjectAltName=DNS:${serverName}`);
  sign('client', 'tempoflow-test-client', 'extendedKeyUsage=clientAuth');
  return {
    ca: at('ca.pem'),
    serverCert: at('server.pem'),
    serverKey: at('server.key'),
    clientCert: at('client.pem'),
    clientKey: at('client.key'),
  };
}

/**
 * A TLS front for a plaintext gRPC server, as a load balancer or a TLS-terminating frontend is: it demands a
 * client certificate signed by `ca` and records the names of the clients it let in.
 */
async function startMtlsProxy(options: { target: string; ca: string; cert: string; key: string }) {
  const [host, port] = [options.target.replace(/:\d+$/, ''), Number(options.target.split(':').pop())];
  const clients: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    {
      ca: readFileSync(options.ca),
      cert: readFileSync(options.cert),
      key: readFileSync(options.key),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      const peer = socket.getPeerCertificate();
      clients.push(String(peer.subject?.CN));
      const upstream = net.connect({ host, port });
      for (const s of [socket, upstream]) {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      }
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    },
  );
  server.on('tlsClientError', () => undefined); // refused handshakes are what some tests want
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    address,
    clients,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

void describe('mTLS for real', () => {
  const serverName = 'temporal.tempoflow.test';
  let temporal: { address: string; namespace: string };
  let certs: ReturnType<typeof makeCertificates>;
  let proxy: Awaited<ReturnType<typeof startMtlsProxy>>;
  let worker: ChildProcess | undefined;
  let workerExit: Promise<unknown> | undefined;

  before(async () => {
    ({ temporal } = await testServices());
    certs = makeCertificates(path.join(dir, 'pki'), serverName);
    proxy = await startMtlsProxy({
      target: temporal.address,
      ca: certs.ca,
      cert: certs.serverCert,
      key: certs.serverKey,
    });
  });

  after(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGKILL');
      await workerExit;
    }
    await proxy?.stop();
  });

  const mtlsEnv = () => ({
    TEMPORAL_ADDRESS: proxy.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
    TEMPORAL_TLS_SERVER_NAME: serverName,
  });

  void test('the CLI presents its client certificate and checks the server against the CA', async () => {
    const before = proxy.clients.length;
    const ok = await cli(['runs', 'list', '--json'], mtlsEnv());
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(Array.isArray(JSON.parse(ok.stdout)));
    assert.ok(proxy.clients.slice(before).includes('tempoflow-test-client'), `clients: ${proxy.clients.join(', ')}`);

    // Without the client certificate the server refuses: a clear error, exit 2.
    const { TEMPORAL_TLS_CLIENT_CERT_PATH: _cert, TEMPORAL_TLS_CLIENT_KEY_PATH: _key, ...noClientCert } = mtlsEnv();
    const refused = await cli(['runs', 'list'], noClientCert);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, new RegExp(`cannot connect to Temporal at ${proxy.address} \\(TLS\\)`));
    assertNoStack(refused.stderr);

    // Plaintext to a TLS endpoint fails too (no silent downgrade).
    const plaintext = await cli(['runs', 'list'], { TEMPORAL_ADDRESS: proxy.address });
    assert.equal(plaintext.code, 2, plaintext.stderr);
  });

  void test(
    'a worker configured by a profile file runs a DAG over mTLS, triggered over mTLS',
    { timeout: 300_000 },
    async () => {
      const taskQueue = `mtls-${randomUUID()}`;
      const configFile = file(
        'mtls.toml',
        `[profile.mtls]
address = "${proxy.address}"
namespace = "${temporal.namespace}"

[profile.mtls.tls]
client_cert_path = "${certs.clientCert}"
client_key_path = "${certs.clientKey}"
server_ca_cert_path = "${certs.ca}"
server_name = "${serverName}"
`,
      );
      const w = spawn(process.execPath, [BIN, 'worker'], {
        cwd: ROOT,
        env: {
          ...baseEnv(),
          TEMPORAL_CONFIG_FILE: configFile,
          TEMPORAL_PROFILE: 'mtls',
          TEMPOFLOW_TASK_QUEUE: taskQueue,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      worker = w;
      workerExit = new Promise((resolve) => w.once('exit', resolve));
      let stderr = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker did not start:\n${stderr}`)), 180_000);
        w.stderr.setEncoding('utf8');
        w.stderr.on('data', (chunk: string) => {
          stderr += chunk;
          if (stderr.includes('tempoflow worker on')) {
            clearTimeout(timer);
            resolve();
          }
        });
        w.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`worker exited with ${code}:\n${stderr}`));
        });
      });
      assert.match(
        stderr,
        new RegExp(`tempoflow worker on ${proxy.address} \\(mTLS\\) · namespace ${temporal.namespace}`),
      );

      const run = await cli(
        ['trigger', 'example_fanout', '-p', 'count=2', '--task-queue', taskQueue, '--wait', '--json'],
        mtlsEnv(),
        180_000,
      );
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}\nworker:\n${stderr}`);
      const status = JSON.parse(run.stdout) as { runId: string; state: string };
      assert.equal(status.state, 'success');
      const listed = await cli(['runs', 'list', '--dag', 'example_fanout', '--json'], mtlsEnv());
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok((JSON.parse(listed.stdout) as { runId: string }[]).some((r) => r.runId === status.runId));

      w.kill('SIGINT');
      assert.equal(await workerExit, 0, stderr);
    },
  );
});
