/**
 * The parts of node-zookeeper-client 1.1.3 the differential test uses, typed as the library behaves
 * (its @types package types `exists`' stat as never null and lacks the session options).
 */
declare module 'node-zookeeper-client' {
  import type { EventEmitter } from 'node:events';

  export interface NzcStat {
    czxid: Buffer;
    mzxid: Buffer;
    ctime: Buffer;
    mtime: Buffer;
    version: number;
    cversion: number;
    aversion: number;
    ephemeralOwner: Buffer;
    dataLength: number;
    numChildren: number;
    pzxid: Buffer;
  }

  export interface NzcException extends Error {
    getCode(): number;
    getName(): string;
  }

  export interface NzcEvent {
    getType(): number;
    getPath(): string;
    getName(): string;
  }

  type Cb<T> = (error: NzcException | null, result: T) => void;
  type Watcher = (event: NzcEvent) => void;

  export interface NzcTransaction {
    create(path: string, data?: Buffer, acls?: unknown[], mode?: number): NzcTransaction;
    check(path: string, version?: number): NzcTransaction;
    setData(path: string, data: Buffer | null, version?: number): NzcTransaction;
    remove(path: string, version?: number): NzcTransaction;
    commit(
      cb: (error: NzcException | null, results: Array<{ type: number; err?: number; path?: string }>) => void,
    ): void;
  }

  export interface NzcClient extends EventEmitter {
    connect(): void;
    close(): void;
    getSessionId(): Buffer;
    create(path: string, data: Buffer | null, mode: number, cb: Cb<string>): void;
    remove(path: string, version: number, cb: (error: NzcException | null) => void): void;
    exists(path: string, watcher: Watcher | undefined, cb: Cb<NzcStat | null>): void;
    getData(
      path: string,
      watcher: Watcher | undefined,
      cb: (error: NzcException | null, data: Buffer | undefined, stat: NzcStat) => void,
    ): void;
    setData(path: string, data: Buffer | null, version: number, cb: Cb<NzcStat>): void;
    getChildren(
      path: string,
      watcher: Watcher | undefined,
      cb: (error: NzcException | null, children: string[], stat: NzcStat) => void,
    ): void;
    transaction(): NzcTransaction;
  }

  export function createClient(
    connectionString: string,
    options?: { sessionTimeout?: number; spinDelay?: number; retries?: number },
  ): NzcClient;

  export const CreateMode: {
    PERSISTENT: number;
    EPHEMERAL: number;
    PERSISTENT_SEQUENTIAL: number;
    EPHEMERAL_SEQUENTIAL: number;
  };
}
