/**
 * Finds and loads a project file (`tempoflow.config.ts`, `.mts`, `.js` or `.mjs`). TypeScript is loaded through
 * tsx's programmatic API, so an installed tempoflow (compiled JavaScript) runs a user's TypeScript project as is.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isProject, projectActivities, ProjectError } from '../core/project';
import type { ActivityRecord, Project } from '../core/project';
import { activityDepsFrom } from './settings';
import type { WorkerSettings } from './settings';

/** The names a project file may have, in the order they are looked for. */
export const PROJECT_FILE_NAMES = [
  'tempoflow.config.ts',
  'tempoflow.config.mts',
  'tempoflow.config.js',
  'tempoflow.config.mjs',
] as const;

/** The project file in `dir`, or undefined when it has none. */
export function findProjectFile(dir: string): string | undefined {
  for (const name of PROJECT_FILE_NAMES) {
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/**
 * The project file `given` names (a file, or a directory holding one), else the one in `cwd`.
 *
 * @throws ProjectError naming the path when there is none.
 */
export function resolveProjectFile(given: string | undefined, cwd: string = process.cwd()): string {
  if (given !== undefined) {
    const target = path.resolve(cwd, given);
    if (!existsSync(target)) throw new ProjectError(`project file ${target} does not exist`);
    if (!statSync(target).isDirectory()) return target;
    const inside = findProjectFile(target);
    if (!inside) throw new ProjectError(`no ${PROJECT_FILE_NAMES.join(', ')} in ${target}`);
    return inside;
  }
  const found = findProjectFile(cwd);
  if (!found) {
    throw new ProjectError(
      `no tempoflow.config.ts in ${cwd}: run tempoflow in a project's folder, pass --project <path>, ` +
        'or create one with `tempoflow init <dir>`',
    );
  }
  return found;
}

let tsxRegistered = false;

/** Lets `import()` load TypeScript (the project file and the DAG and activity files it imports). */
async function registerTypeScript(): Promise<void> {
  if (tsxRegistered) return;
  tsxRegistered = true;
  // One global registration (not tsImport's namespaced one): the project's `import 'tempoflow'` must give the
  // very modules the CLI runs, so that its errors are the CLI's TempoflowError.
  const { register } = await import('tsx/esm/api');
  register();
}

/**
 * Loads a project file: its default export (or a `project` export) must be a `defineProject` result.
 *
 * @throws ProjectError naming the file when it is missing, fails to load, or exports no project.
 */
export async function loadProject(file: string): Promise<Project> {
  const absolute = path.resolve(file);
  if (!existsSync(absolute)) throw new ProjectError(`project file ${absolute} does not exist`);
  await registerTypeScript();
  let module: { default?: unknown; project?: unknown };
  try {
    module = (await import(pathToFileURL(absolute).href)) as typeof module;
  } catch (err) {
    const at = sourceOf(err);
    throw new ProjectError(
      `could not load project file ${absolute}: ${describeLoadError(err)}${at ? ` (at ${at})` : ''}`,
      {
        cause: err,
      },
    );
  }
  const project = module.default ?? module.project;
  if (!isProject(project)) {
    throw new ProjectError(
      `project file ${absolute} must \`export default defineProject({ dags, activities })\` (import { defineProject } from 'tempoflow')`,
    );
  }
  return project;
}

/** The first line of a load error, with the file, line and column of a syntax error. */
function describeLoadError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // esbuild's "Transform failed with 1 error:" names the file, line and column on the next line.
  const lines = err.message.split('\n').filter((line) => line.trim());
  const message = (/failed with \d+ errors?:$/.test(lines[0] ?? '') ? lines.slice(0, 2) : lines.slice(0, 1)).join(' ');
  return err.name && err.name !== 'Error' && !message.startsWith(err.name) ? `${err.name}: ${message}` : message;
}

/**
 * Where in the project's own code an error thrown while loading it was raised: the outermost frame of its stack in
 * a file outside `node_modules` (`dags/etl.ts:3:23`, relative to the working folder), which for an error of
 * `defineDag` is the call that declared the DAG. Undefined when the stack shows none (a syntax error names its
 * place in the message).
 */
function sourceOf(err: unknown): string | undefined {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return undefined;
  let found: string | undefined;
  for (const line of err.stack.split('\n')) {
    // `at async …` frames are callers awaiting the import (the loader), not where the error was raised.
    const frame = /^\s+at (?!async )(?:.*? \()?(.+?):(\d+):(\d+)\)?$/.exec(line);
    if (!frame) continue;
    const file = frame[1]!.startsWith('file://') ? fileURLToPath(frame[1]!) : frame[1]!;
    if (!path.isAbsolute(file) || file.split(path.sep).includes('node_modules')) continue;
    const relative = path.relative(process.cwd(), file);
    found = `${relative.startsWith('..') ? file : relative}:${frame[2]}:${frame[3]}`;
  }
  return found;
}

/** The DAGs and task activities a worker for `project` hosts, its activities built with the worker's settings. */
export async function projectWorkerParts(
  project: Project,
  settings: WorkerSettings,
): Promise<{ dags: Project['dags']; activities: ActivityRecord }> {
  return { dags: project.dags, activities: await projectActivities(project, activityDepsFrom(settings)) };
}
