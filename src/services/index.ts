/**
 * Services: long-running programs kept alive across the farm (docs/services.md). The model and its
 * znodes (model.ts), the leader's reconciler (reconciler.ts, plan.ts), the worker's runner (runner.ts,
 * instance.ts, health.ts) and the library API (api.ts).
 */
export {
  changeService,
  createService,
  type InstanceState,
  listServices,
  removeService,
  restartService,
  type ServiceState,
  scaleService,
  serviceEndpoints,
  serviceState,
  updateService,
} from './api.js';
export { FENCE_MARGIN_MS } from './fence.js';
export type { HandlerRunner } from './instance.js';
export {
  type Endpoint,
  type HealthCheck,
  type InstanceRecord,
  type Placement,
  parseServiceSpec,
  type RestartPolicy,
  type RunRecord,
  type RunState,
  SERVICE_PATHS,
  type ServiceRecord,
  type ServiceSpec,
  type ServiceSpecInput,
  type ServiceStatus,
  type UnplaceableCode,
  type Unplaced,
} from './model.js';

import { serviceSchemas } from './model.js';

export { ServiceReconciler } from './reconciler.js';

/**
 * A service definition's zod schema, as the library has always exported it. Built when this entry is
 * imported (role threads import services/model.ts alone, which builds it on first use).
 */
export const serviceSpecSchema = serviceSchemas().spec;
export { ServiceRunner } from './runner.js';
