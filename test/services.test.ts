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
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes';
import { startDevServer } from '../services/dev-server';
import { startS3Server } from '../services/s3-server';
import type { S3Server } from '../services/s3-server';
import { createTestBucket, s3ClientForTests, testServices } from './services';

// temporal.api.enums.v1.IndexedValueType (BOOL is 5)
const INDEXED_VALUE_TYPE = { KEYWORD: 2, DATETIME: 6 } as const;

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
