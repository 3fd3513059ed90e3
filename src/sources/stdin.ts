import type { Readable } from 'node:stream';
import { type Logger, silentLogger } from '../core/logger.js';
import type { LogLine } from '../detect/types.js';
import { DEFAULT_MAX_LINE_BYTES, LineSplitter } from './line-splitter.js';
import type { Source } from './types.js';

export interface StreamSourceOptions {
  /** Default: process.stdin. */
  stream?: Readable;
  /** The `source` of every line; default `stdin`. */
  name?: string;
  maxLineBytes?: number;
  logger?: Logger;
}

/**
 * Lines from standard input or any readable stream (`rampart check -`, a pipe from another
 * program). A last line without a newline is still delivered when the stream ends; `ended`
 * resolves then, so a one-shot replay knows it has seen everything.
 */
export class StreamSource implements Source {
  readonly name: string;
  readonly ended: Promise<void>;
  private endedResolve!: () => void;
  private readonly stream: Readable;
  private readonly log: Logger;
  private detach: (() => void) | undefined;
  truncatedLines = 0;

  constructor(private readonly o: StreamSourceOptions = {}) {
    this.name = o.name ?? 'stdin';
    this.stream = o.stream ?? process.stdin;
    this.log = o.logger ?? silentLogger();
    this.ended = new Promise((r) => {
      this.endedResolve = r;
    });
  }

  async start(onLine: (line: LogLine) => void): Promise<void> {
    const splitter = new LineSplitter(this.o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    const emit = (text: string, truncated: boolean) => {
      if (truncated) {
        this.truncatedLines++;
        this.log.warn({ source: this.name }, 'line longer than the cap: cut');
      }
      onLine({ text, source: this.name });
    };
    const onData = (chunk: Buffer | string) =>
      splitter.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk), emit);
    const onEnd = () => {
      splitter.flush(emit);
      this.endedResolve();
    };
    const onError = (err: Error) => {
      this.log.error({ source: this.name, err: String(err) }, 'input stream failed');
      onEnd();
    };
    this.stream.on('data', onData);
    this.stream.once('end', onEnd);
    this.stream.once('error', onError);
    this.detach = () => {
      this.stream.off('data', onData);
      this.stream.off('end', onEnd);
      this.stream.off('error', onError);
    };
  }

  async stop(): Promise<void> {
    this.detach?.();
    this.detach = undefined;
    this.stream.pause();
    this.endedResolve();
  }
}
