// The pure pipeline: config file -> rendered files (see ARCHITECTURE.md).
import { loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { buildModel } from './model/model.js';
import { plan, type Artifact } from './plan/plan.js';
import { renderFiles, type OutFile } from './output/files.js';

export function planConfig(cfg: Config): Artifact[] {
  return plan(buildModel(cfg));
}

export function renderConfig(cfg: Config): OutFile[] {
  return renderFiles(planConfig(cfg));
}

export function renderConfigFile(file: string): OutFile[] {
  return renderConfig(loadConfig(file));
}
