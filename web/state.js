// The page's state, shared by its modules.

export const state = {
  controls: false,
  /** The Crash control (fault injection) is on. */
  crash: false,
  // The page was opened with the dashboard's token (controls need it).
  authorized: false,
  readOnly: true,
  snapshot: null,
  lastSnapshotAt: 0,
  charts: {},
  data: { t: [], queue: [], inFlight: [], rate: [], failRate: [], p50: [], p95: [], p99: [], run50: [] },
  myTasks: new Map(),
  openTask: null,
};
