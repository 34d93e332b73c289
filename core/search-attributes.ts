import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { SearchAttributePair } from '@temporalio/common';
import type { DagRunState } from './types';

/** Search attributes that make runs findable in the Web UI (`DagId="sparkify_etl"`). */
export const DAG_ID = defineSearchAttributeKey('DagId', SearchAttributeType.KEYWORD);
export const LOGICAL_DATE = defineSearchAttributeKey('LogicalDate', SearchAttributeType.DATETIME);
export const DAG_RUN_STATE = defineSearchAttributeKey('DagRunState', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = { DagId: 'KEYWORD', LogicalDate: 'DATETIME', DagRunState: 'KEYWORD' } as const;

/** The `DagRunState` search attribute, typed so that only run states are written. */
export function dagRunStateAttribute(state: DagRunState): SearchAttributePair {
  return { key: DAG_RUN_STATE, value: state };
}
