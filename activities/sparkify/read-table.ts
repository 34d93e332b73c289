import path from 'node:path';
import type { Store } from '../../storage/store';
import { safeLocalPath } from '../../storage/local-path';
import { joinUri } from '../../storage/uri';
import { downloadAll } from './transfer';
import { publishedFiles } from './lake-files';
import { type DuckDbOptions, withDuckDb, withScratch } from '../../worker/duckdb';
import type { LayoutName, TableName } from './paths';
import { loadTable } from './validate';

/**
 * Reads one table of a lake (published `<output>/<table>` or any table directory URI) into plain rows sorted
 * by all columns, with hive partition columns included: the files its marker (`_run.json`) names, or all of them
 * when it has none. For inspection and tests: the whole table is loaded.
 */
export async function readTable(
  store: Store,
  tableUri: string,
  table: LayoutName,
  duckdb: DuckDbOptions = {},
): Promise<Record<string, unknown>[]> {
  return withScratch(duckdb, 'read', async (dir) => {
    const local = path.join(dir, table);
    // Through the table's marker: a reader never sees a publish in progress half done.
    const objects = (await publishedFiles(store, tableUri)).map((o) => ({
      o,
      local: safeLocalPath(local, o.key),
    }));
    await downloadAll(store, objects);
    return withDuckDb(
      duckdb,
      dir,
      async (conn) => {
        await loadTable(conn, table, local);
        const r = await conn.runAndReadAll(`SELECT * FROM "${table}" ORDER BY ALL`);
        return r.getRowObjectsJS();
      },
      undefined,
      { preserveOrder: false },
    );
  });
}

/** `readTable` of a published table under a lake's output. */
export function readPublished(store: Store, output: string, table: TableName, duckdb?: DuckDbOptions) {
  return readTable(store, joinUri(output, table), table, duckdb);
}
