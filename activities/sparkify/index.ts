/** The Sparkify data plane: generator, transforms (plain async functions) and their Temporal activities. */
export { buildTables, type BuildTablesArgs, type BuildTablesResult } from './build-tables';
export type { DuckDbOptions } from '../../worker/duckdb';
export { InputDataError, QualityCheckError, RejectRateError } from './errors';
export { generateSparkify, type GenerateExpectations, type GenerateOptions } from './generate';
export {
  isHidden,
  listInputs,
  logFileDate,
  type ListInputsArgs,
  type ListInputsResult,
  type Manifest,
} from './list-inputs';
export {
  SONG_TABLES,
  TABLES,
  lakeStatePaths,
  runPaths,
  runToken,
  type OnProgress,
  type Progress,
  type TableName,
} from './paths';
export { prepareSparkifyRun, runSparkifyPipeline, type PipelineArgs, type PipelineResult } from './pipeline';
export { publish, RUN_MARKER, type PublishArgs, type PublishResult } from './publish';
export { readPublished, readTable } from './read-table';
export { LakeIntegrityError, publishedFiles, type TableMarker } from './lake-files';
export { fingerprintSongFiles, type SongInput, type SongState } from './song-state';
export {
  assessRejects,
  parseEventFile,
  parseSongFile,
  stageLogs,
  stageSongs,
  type RejectAssessment,
  type StageArgs,
  type StageResult,
} from './stage';
export { validate, type QualityCheck, type ValidateArgs, type ValidateResult } from './validate';
