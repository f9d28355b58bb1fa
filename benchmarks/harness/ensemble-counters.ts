/**
 * What each member of an ensemble did over a window: its CPU (utime + stime of its java process, see
 * proc.ts) and the changes of its `mntr` counters (the four-letter word; the launcher's servers allow
 * it). The counters used, per member:
 *
 *   zk_packets_received / zk_packets_sent      client requests in; responses and notifications out
 *   zk_bytes_received_count / zk_response_bytes  client bytes in; bytes out to clients
 *   zk_server_state                            leader or follower
 *   zk_proposal_count                          the leader's proposals: write transactions
 *   zk_approximate_data_size                   bytes of data in the tree (every member holds it all)
 *   zk_num_alive_connections                   client connections now
 *
 * Asking `mntr` is itself a client packet: a window's counts have one question's own counts taken out,
 * measured by asking twice in a row at its start (`probe`).
 */
import { fourLetterWord } from '../../src/zk/four-letter.js';
import { processCpuMs } from './proc.js';
import type { EnsembleMemberTarget, MemberPass } from './types.js';

/** A member's counters at one moment. */
export interface MemberCounters {
  id: number;
  leader: boolean;
  cpuMs: number;
  received: number;
  sent: number;
  bytesIn: number;
  bytesOut: number;
  connections: number;
  proposals: number;
  dataSize: number;
}

/** `mntr`'s tab-separated lines as a map. */
export function parseMntr(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1).trim());
  }
  return out;
}

/** Every member's counters now (the members asked at once). */
export async function readMembers(members: readonly EnsembleMemberTarget[]): Promise<MemberCounters[]> {
  return Promise.all(
    members.map(async (m) => {
      const mntr = parseMntr(await fourLetterWord(m.host, m.port, 'mntr', 5000));
      const n = (key: string) => {
        const v = Number(mntr.get(key));
        return Number.isFinite(v) && v >= 0 ? v : 0;
      };
      return {
        id: m.id,
        leader: mntr.get('zk_server_state') === 'leader',
        cpuMs: processCpuMs(m.pid),
        received: n('zk_packets_received'),
        sent: n('zk_packets_sent'),
        bytesIn: n('zk_bytes_received_count'),
        bytesOut: n('zk_response_bytes'),
        connections: n('zk_num_alive_connections'),
        proposals: n('zk_proposal_count'),
        dataSize: n('zk_approximate_data_size'),
      };
    }),
  );
}

/** Counts that move from one reading to the next. */
const COUNTS = ['received', 'sent', 'bytesIn', 'bytesOut', 'proposals'] as const;
type Counts = Record<(typeof COUNTS)[number], number>;

function diff(a: MemberCounters, b: MemberCounters): Counts {
  const out = {} as Counts;
  for (const k of COUNTS) out[k] = b[k] - a[k];
  return out;
}

/** A window's start: the counters, and one `mntr` question's own counts per member. */
export interface WindowStart {
  at: MemberCounters[];
  probe: Counts[];
}

/** Read the members twice in a row: the second reading starts the window, the difference is the probe's. */
export async function startWindow(members: readonly EnsembleMemberTarget[]): Promise<WindowStart> {
  const first = await readMembers(members);
  const at = await readMembers(members);
  return { at, probe: at.map((m, i) => diff(first[i]!, m)) };
}

/** Each member over the window, the leader's proposals (write transactions) and the data size change. */
export function endWindow(
  start: WindowStart,
  end: MemberCounters[],
): { members: MemberPass[]; txns: number; dataBytes: number } {
  const members = end.map((b, i) => {
    const a = start.at[i]!;
    const d = diff(a, b);
    const p = start.probe[i]!;
    const less = (k: keyof Counts) => Math.max(0, d[k] - p[k]);
    return {
      pass: {
        id: b.id,
        leader: b.leader,
        cpuMs: Math.round(b.cpuMs - a.cpuMs),
        packetsReceived: less('received'),
        packetsSent: less('sent'),
        bytesReceived: less('bytesIn'),
        bytesSent: less('bytesOut'),
        connections: b.connections,
      },
      proposals: b.leader ? less('proposals') : 0,
    };
  });
  const leader = end.find((m) => m.leader) ?? end[0]!;
  const before = start.at.find((m) => m.id === leader.id)!;
  return {
    members: members.map((m) => m.pass),
    txns: members.reduce((n, m) => n + m.proposals, 0),
    dataBytes: leader.dataSize - before.dataSize,
  };
}
