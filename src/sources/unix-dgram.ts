import { type ChildProcess, spawn } from 'node:child_process';
import { lstatSync, unlinkSync } from 'node:fs';
import { RampartError } from '../core/errors.js';

/**
 * Node has no AF_UNIX datagram sockets (`node:dgram` is UDP only), so a tiny Perl helper (perl-base
 * is Essential on Debian; only core `Socket` is used) owns the socket and passes every datagram up a
 * pipe with a 4-byte length in front. One datagram stays one message: see docs/adr/0002-unix-datagram.md.
 * The helper exits when our end of its stdin closes, so it never outlives the agent.
 */
const HELPER = String.raw`
use strict; use warnings; use Socket;
my ($path, $mode, $max) = @ARGV;
if (-e $path || -l $path) {
  die "exists and is not a socket\n" unless -S $path;
  socket(my $probe, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
  die "in use: another process is listening on it\n" if connect($probe, pack_sockaddr_un($path));
  unlink($path) or die "cannot remove the stale socket: $!\n";
}
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
my $old = umask(0177);
bind($s, pack_sockaddr_un($path)) or die "bind: $!\n";
umask($old);
chmod(oct($mode), $path) or die "chmod: $!\n";
setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', 4 << 20));
my $done = sub { unlink($path); exit(0); };
$SIG{TERM} = $done; $SIG{INT} = $done; $SIG{PIPE} = $done;
binmode(STDOUT); $| = 1;
print STDERR "ready\n";
my $rin = ''; vec($rin, fileno($s), 1) = 1; vec($rin, fileno(STDIN), 1) = 1;
while (1) {
  my $n = select(my $rout = $rin, undef, undef, undef);
  next if $n <= 0;
  if (vec($rout, fileno(STDIN), 1)) { my $b; $done->() unless sysread(STDIN, $b, 64); }
  if (vec($rout, fileno($s), 1)) {
    my $buf;
    next unless defined recv($s, $buf, $max, 0);
    print STDOUT pack('N', length($buf)), $buf or $done->();
  }
}
`;

export interface UnixDgramOptions {
  path: string;
  /** Socket file mode, e.g. 0o660 so a syslog daemon's group can write. Default 0o666. */
  mode?: number;
  /** Longer datagrams are cut to this many bytes. */
  maxBytes: number;
  perl?: string;
  /** Called if the helper dies while we still want it (killed from outside). */
  onUnexpectedExit?: (why: string) => void;
}

/** A bound UNIX datagram socket; `onMessage` gets each datagram's bytes. */
export class UnixDgramReceiver {
  private child: ChildProcess | undefined;
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly o: UnixDgramOptions) {}

  /** Binds (removing a stale socket file, refusing a live one or a non-socket) and resolves when ready. */
  async start(onMessage: (bytes: Buffer) => void): Promise<void> {
    const mode = (this.o.mode ?? 0o666).toString(8);
    const child = spawn(this.o.perl ?? 'perl', ['-e', HELPER, this.o.path, mode, String(this.o.maxBytes)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (chunk: Buffer) => {
      this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
      while (this.pending.length >= 4) {
        const n = this.pending.readUInt32BE(0);
        if (this.pending.length < 4 + n) break;
        onMessage(this.pending.subarray(4, 4 + n));
        this.pending = this.pending.subarray(4 + n);
      }
    });
    child.stdin!.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const fail = (why: string) =>
        reject(
          new RampartError('E_SOURCE', `syslog unix socket ${this.o.path}: ${why.trim() || 'helper failed'}`),
        );
      child.once('error', (e) => fail(`cannot start perl: ${e.message}`));
      child.once('exit', () => fail(err));
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('ready\n')) {
          child.removeAllListeners('exit');
          child.once('exit', (code, signal) => {
            if (this.child === child) this.o.onUnexpectedExit?.(`helper exited (${code ?? signal})`);
          });
          resolve();
        }
      });
    }).catch((e) => {
      this.child = undefined;
      throw e;
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    // The helper unlinks on SIGTERM; after a SIGKILL the file would be left, so check once more.
    try {
      if (lstatSync(this.o.path).isSocket()) unlinkSync(this.o.path);
    } catch {
      // Already gone.
    }
  }
}
