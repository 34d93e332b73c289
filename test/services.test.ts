import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes';
import { createTestBucket, s3ClientForTests, testServices } from './services';

describe('test services', () => {
  it('the Temporal dev server answers and has the DagId, LogicalDate and DagRunState search attributes', async () => {
    const { temporal } = await testServices();
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: temporal.namespace });
      for (const name of Object.keys(SEARCH_ATTRIBUTES)) assert.ok(customAttributes?.[name], `search attribute ${name}`);
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
        await Promise.all(keys.slice(i, i + 100).map((Key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }))));
      }
      const listed: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'many/', ContinuationToken: token }));
        listed.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.NextContinuationToken;
        pages++;
      } while (token);
      assert.equal(listed.length, 1100);
      assert.ok(pages >= 2, 'more than one page');
      const body = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: keys[42] }))).Body!.transformToString();
      assert.equal(body, keys[42]);
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(0, 1000).map((Key) => ({ Key })) } }));
      const rest = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'many/' }));
      assert.equal(rest.KeyCount, 100);
    } finally {
      s3.destroy();
    }
  });
});
