import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { triggerDagRun } from '../client/runs';
import { defineDag } from '../core/dag';
import { TempoflowError } from '../core/errors';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes';
import { ensureSearchAttributes } from '../worker/create-worker';
import { startDevServer } from '../services/dev-server';
import { startS3Server } from '../services/s3-server';
import type { S3Server } from '../services/s3-server';
import { createTestBucket, s3ClientForTests, testServices } from './services';
import { cliInProcess } from './support';

// temporal.api.enums.v1.IndexedValueType, written out: the worker takes them from the SDK's protos.
const INDEXED_VALUE_TYPE = { KEYWORD: 2, DATETIME: 6 } as const;
const BOOL = 5;

/** A new namespace on the test server, with none of tempoflow's search attributes, once the server serves it. */
async function bareNamespace(connection: Connection): Promise<string> {
  const namespace = `bare-${randomUUID().slice(0, 8)}`;
  await connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  for (let i = 0; ; i++) {
    try {
      await connection.operatorService.listSearchAttributes({ namespace });
      return namespace;
    } catch (err) {
      if (i >= 100) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Whether something accepts TCP connections on `port` of 127.0.0.1. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const portOf = (urlOrAddress: string) => Number(/:(\d+)\/?$/.exec(urlOrAddress)?.[1]);

function clientFor(server: S3Server): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

describe('test services', () => {
  it('the Temporal dev server answers and has the DagId, LogicalDate and DagRunState search attributes', async () => {
    const { temporal } = await testServices();
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const info = await connection.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion, 'the frontend reports its version');
      const { customAttributes } = await connection.operatorService.listSearchAttributes({
        namespace: temporal.namespace,
      });
      for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
        assert.equal(customAttributes?.[name], INDEXED_VALUE_TYPE[type], `search attribute ${name} is a ${type}`);
      }
    } finally {
      await connection.close();
    }
  });

  it("a worker adds tempoflow's search attributes with their types where they are missing, and names one of another type", async () => {
    const { temporal } = await testServices();
    const connection = await Connection.connect({ address: temporal.address });
    const dag = defineDag({ id: 'test_search_attributes', tasks: [{ id: 'only', activity: 'nothing' }] });
    try {
      const namespace = await bareNamespace(connection);
      await ensureSearchAttributes(temporal.address, namespace);
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
      for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
        assert.equal(customAttributes?.[name], INDEXED_VALUE_TYPE[type], `search attribute ${name} is a ${type}`);
      }
      // The server takes a run's attributes there (a LogicalDate of another type refused every start).
      const run = await triggerDagRun(new Client({ connection, namespace }), dag, {
        taskQueue: 'nobody-polls',
        logicalDate: '2018-11-02T00:00:00.000Z',
      });
      assert.equal(run.created, true);
      await run.handle.terminate('test: started is enough');
      await ensureSearchAttributes(temporal.address, namespace); // present and right: nothing to do

      // LogicalDate as a Bool, as earlier workers added it: the worker refuses to start, naming it and the mend;
      // a trigger there says the server's reason, not only the SDK's "Failed to start Workflow".
      const mistyped = await bareNamespace(connection);
      await connection.operatorService.addSearchAttributes({
        namespace: mistyped,
        searchAttributes: {
          DagId: INDEXED_VALUE_TYPE.KEYWORD,
          DagRunState: INDEXED_VALUE_TYPE.KEYWORD,
          LogicalDate: BOOL,
        },
      });
      await assert.rejects(ensureSearchAttributes(temporal.address, mistyped), (err: Error) => {
        assert.ok(err instanceof TempoflowError, String(err));
        assert.match(err.message, new RegExp(`namespace '${mistyped}' has tempoflow's search attributes with other`));
        assert.match(err.message, /LogicalDate is Bool where tempoflow needs Datetime/);
        assert.match(err.message, /`temporal operator search-attribute remove --name LogicalDate`/);
        return true;
      });
      const { customAttributes: after } = await connection.operatorService.listSearchAttributes({
        namespace: mistyped,
      });
      assert.equal(after?.LogicalDate, BOOL, 'left as it was: removing it is for its owner');
      const triggered = await cliInProcess(['--namespace', mistyped, 'trigger', 'example_fanout']);
      assert.equal(triggered.code, 1, triggered.stdout);
      assert.match(
        triggered.stderr,
        /Failed to start Workflow: invalid value for search attribute LogicalDate of type Bool/,
      );
    } finally {
      await connection.close();
    }
  });

  it('the S3 server stores, lists with pagination, reads and deletes objects', async () => {
    const bucket = await createTestBucket('services');
    const s3 = await s3ClientForTests();
    try {
      const keys = Array.from({ length: 1100 }, (_, i) => `many/${String(i).padStart(4, '0')}.txt`);
      for (let i = 0; i < keys.length; i += 100) {
        await Promise.all(
          keys.slice(i, i + 100).map((Key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }))),
        );
      }
      const listed: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: 'many/', ContinuationToken: token }),
        );
        listed.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.NextContinuationToken;
        pages++;
      } while (token);
      assert.deepEqual(listed, keys, 'every key once, in key order');
      assert.ok(pages >= 2, `more than one page (got ${pages})`);

      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: keys[42] }));
      assert.equal(await object.Body!.transformToString(), keys[42]);

      const deleted = await s3.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(0, 1000).map((Key) => ({ Key })) } }),
      );
      assert.equal(deleted.Errors?.length ?? 0, 0);
      const rest = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'many/' }));
      assert.deepEqual(
        (rest.Contents ?? []).map((o) => o.Key),
        keys.slice(1000),
      );
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: keys[0] })), { name: 'NotFound' });
    } finally {
      s3.destroy();
    }
  });

  for (const metadata of ['xattr', 'sidecar'] as const) {
    it(`startS3Server (${metadata} metadata) creates buckets, keeps objects as files, and stop() ends it`, async () => {
      const server = await startS3Server({ buckets: ['first', 'second'], metadata });
      const client = clientFor(server);
      try {
        await client.send(
          new PutObjectCommand({ Bucket: 'second', Key: 'a/b.json', Body: '{"x":1}', ContentType: 'application/json' }),
        );
        const head = await client.send(new HeadObjectCommand({ Bucket: 'second', Key: 'a/b.json' }));
        assert.equal(head.ContentType, 'application/json', 'metadata is kept');
        assert.equal(readFileSync(join(server.dataDir, 'second', 'a', 'b.json'), 'utf8'), '{"x":1}');
        assert.ok(existsSync(join(server.dataDir, 'first')));
      } finally {
        client.destroy();
        await server.stop();
      }
      assert.equal(await listening(portOf(server.endpoint)), false, 'nothing listens after stop()');
      assert.equal(existsSync(server.dataDir), false, 'its own temp dir is removed');
    });
  }

  it('startDevServer picks free ports, and stop() ends the server', async () => {
    const { temporal } = await testServices();
    const server = await startDevServer({ headless: true, namespace: 'other' });
    try {
      assert.notEqual(server.address, temporal.address);
      assert.equal(server.namespace, 'other');
      assert.equal(server.uiUrl, undefined);
      const connection = await Connection.connect({ address: server.address });
      try {
        const { namespaceInfo } = await connection.workflowService.describeNamespace({ namespace: 'other' });
        assert.equal(namespaceInfo?.name, 'other');
      } finally {
        await connection.close();
      }
    } finally {
      await server.stop();
    }
    assert.equal(await listening(portOf(server.address)), false, 'nothing listens after stop()');
  });
});
