/**
 * The code that talks to libnftables and libipset, as JavaScript text. Text, not a module file:
 * the same source then runs from the compiled `dist/` and from the TypeScript sources under the
 * test runner (worker threads get no TypeScript loader), and the same text serves both places it
 * runs: the kernel worker thread (big batches, listings) and the main thread (a small commit, see
 * {@link KERNEL_CORE_SOURCE}).
 *
 * A core owns one libnftables context and one libipset handle at a time and serves requests one
 * by one, so a context is never used concurrently (libnftables contexts are not thread-safe). Each
 * thread that runs requests has its own core.
 */

/**
 * `(function (koffi, fs, libs) {...})`: evaluates to a factory of one kernel core. It answers
 * `run(tool, args, script)` with `{code, stdout, stderr}` in the command-line tools' own formats,
 * so one parser serves the library and the spawned programs; `netns(path)` gives `enter()` and
 * `leave()` that move the calling thread (only it) into a network namespace and back with
 * setns(2): every netlink socket the libraries open meanwhile talks to that namespace's kernel
 * tables, while the rest of the process stays where it is (see ADR 0011).
 */
export const KERNEL_CORE_SOURCE = String.raw`(function kernelCore(koffi, fs, libs) {
  'use strict';
  const CLONE_NEWNET = 0x40000000;
  const NFT_JSON = 1 << 4;
  const NFT_TERSE = 1 << 11;
  const IPSET_ENV_EXIST = 1 << 3;
  const IPSET_ERROR = 3;

  const libc = koffi.load('libc.so.6');
  const c = {
    setns: libc.func('int setns(int fd, int nstype)'),
    memfd: libc.func('int memfd_create(const char *name, unsigned int flags)'),
    write: libc.func('long write(int fd, const void *buf, size_t n)'),
    close: libc.func('int close(int fd)'),
    fopen: libc.func('void *fopen(const char *path, const char *mode)'),
    fclose: libc.func('int fclose(void *f)'),
    socket: libc.func('int socket(int domain, int type, int protocol)'),
    sendto: libc.func('long sendto(int fd, const void *buf, size_t n, int flags, const void *addr, uint32_t len)'),
    recv: libc.func('long recv(int fd, void *buf, size_t n, int flags)'),
  };
  // glibc only: hands freed C heap back to the kernel (absent elsewhere, then a no-op).
  let mallocTrim = null;
  try {
    mallocTrim = libc.func('int malloc_trim(size_t pad)');
  } catch {}

  function setns(fd, what) {
    if (c.setns(fd, CLONE_NEWNET) !== 0) throw new Error('setns ' + what + ' failed, errno ' + koffi.errno());
  }

  // The namespace a path names, and the one this thread is in now (to come back to).
  function netns(path) {
    const target = fs.openSync(path, 'r');
    const home = fs.openSync('/proc/thread-self/ns/net', 'r');
    return {
      enter: () => setns(target, 'into ' + path),
      leave: () => setns(home, 'back from ' + path),
      close: () => {
        fs.closeSync(target);
        fs.closeSync(home);
      },
    };
  }

  // Errors need the script in a memory file: the library then reports FILE:LINE:COL exactly as
  // the command does for a file, which a plain buffer run does not.
  function writeAll(fd, text) {
    const b = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < b.length) {
      const n = Number(c.write(fd, off === 0 ? b : b.subarray(off), b.length - off));
      if (n <= 0) throw new Error('write to memfd failed, errno ' + koffi.errno());
      off += n;
    }
  }

  // Text held in memory before a script spills into its memory file (and written per ~1 MB after).
  const SPILL_CHARS = 1 << 20;

  // The script text of one request. A small one (a single ban) stays a string for one buffer run;
  // a big one is written to a memory file slice by slice as it arrives, so this thread never holds
  // a million-element script (nor its joined copy) at once.
  class Script {
    constructor() {
      this.chunks = [];
      this.size = 0;
      this.fd = -1;
      this.lines = 0;
      this.total = 0;
    }
    push(list) {
      for (const x of list) {
        this.chunks.push(x);
        this.size += x.length;
        this.total += x.length;
        for (let i = x.indexOf('\n'); i >= 0; i = x.indexOf('\n', i + 1)) this.lines++;
      }
      if (this.size >= SPILL_CHARS) this.spill();
    }
    get spilled() {
      return this.fd >= 0;
    }
    text() {
      return this.chunks.length === 1 ? this.chunks[0] : this.chunks.join('');
    }
    spill() {
      if (this.fd < 0) {
        this.fd = c.memfd('rampart', 0);
        if (this.fd < 0) throw new Error('memfd_create failed, errno ' + koffi.errno());
      }
      if (this.chunks.length > 0) writeAll(this.fd, this.text());
      this.chunks = [];
      this.size = 0;
    }
    /** The whole script as a path the libraries can open (each open reads from its start). */
    path() {
      this.spill();
      return '/proc/self/fd/' + this.fd;
    }
    close() {
      if (this.fd >= 0) c.close(this.fd);
      this.fd = -1;
      this.chunks = [];
    }
  }

  // nf_tables over netlink directly, for the two things libnftables only offers as whole-set
  // text (ADR 0043): the ruleset generation, one round trip, and a set's elements read one
  // 32 KB message at a time into typed arrays (no text, no library cache of a million objects).
  const NFNL_NFTABLES = 10 << 8;
  const NFT_MSG_GETSETELEM = 13;
  const NFT_MSG_GETGEN = 16;
  const NFT_MSG_NEWGEN = 15;
  const NLMSG_ERROR = 2;
  const NLMSG_DONE = 3;
  const NLM_F_REQUEST = 1;
  const NLM_F_DUMP = 0x300;
  const NLM_F_DUMP_INTR = 0x10;
  const NL_PEER = Buffer.alloc(12);
  NL_PEER.writeUInt16LE(16, 0);
  let nl;
  function nlOpen() {
    if (nl) return nl;
    const fd = c.socket(16, 3 | 0x80000, 12);
    if (fd < 0) throw new Error('netlink socket failed, errno ' + koffi.errno());
    nl = { fd, seq: 0, buf: Buffer.alloc(1 << 16) };
    return nl;
  }
  function nlClose() {
    if (nl) c.close(nl.fd);
    nl = undefined;
  }
  function nlSend(type, flags, family, strings) {
    const s = nlOpen();
    const parts = strings.map((x) => Buffer.from(x + '\0'));
    let len = 20;
    for (const b of parts) len += (4 + b.length + 3) & ~3;
    // From Node's shared pool: a request per ban must not each make an ArrayBuffer the GC tracks.
    const m = Buffer.allocUnsafe(len).fill(0);
    m.writeUInt32LE(len, 0);
    m.writeUInt16LE(NFNL_NFTABLES | type, 4);
    m.writeUInt16LE(NLM_F_REQUEST | flags, 6);
    m.writeUInt32LE(++s.seq, 8);
    m[16] = family;
    let off = 20;
    parts.forEach((b, i) => {
      m.writeUInt16LE(4 + b.length, off);
      m.writeUInt16LE(i + 1, off + 2);
      b.copy(m, off + 4);
      off += (4 + b.length + 3) & ~3;
    });
    nlWrite(s, m);
    return s;
  }
  function nlWrite(s, bytes) {
    if (Number(c.sendto(s.fd, bytes, bytes.length, 0, NL_PEER, 12)) !== bytes.length) {
      nlClose();
      throw new Error('netlink send failed, errno ' + koffi.errno());
    }
  }
  // Calls each(type, flags, start, end) per message of this request until it returns true (then
  // answers true). After maxRounds receives (when > 0) the request is abandoned: false.
  function nlReceive(s, each, maxRounds) {
    for (let round = 1; ; round++) {
      const n = Number(c.recv(s.fd, s.buf, s.buf.length, 0));
      if (n <= 0) {
        nlClose();
        throw new Error('netlink receive failed, errno ' + koffi.errno());
      }
      for (let off = 0; off + 16 <= n; ) {
        const len = s.buf.readUInt32LE(off);
        if (len < 16) break;
        // Anything left of an earlier request (an abandoned dump) is skipped.
        if (s.buf.readUInt32LE(off + 8) === s.seq) {
          if (each(s.buf.readUInt16LE(off + 4), s.buf.readUInt16LE(off + 6), off, off + len)) return true;
        }
        off += (len + 3) & ~3;
      }
      if (maxRounds > 0 && round >= maxRounds) {
        // The kernel would go on sending the rest: a fresh socket for the next request.
        nlClose();
        return false;
      }
    }
  }
  function nlError(s, off) {
    return -s.buf.readInt32LE(off + 16);
  }

  // The nf_tables generation of this namespace: every committed transaction, anyone's, bumps it.
  function generation() {
    const s = nlSend(NFT_MSG_GETGEN, 0, 0, []);
    let gen;
    nlReceive(s, (type, _flags, off, end) => {
      if (type === NLMSG_ERROR) {
        const e = nlError(s, off);
        if (e) throw new Error('nf_tables generation: errno ' + e);
        return gen !== undefined;
      }
      if (type !== (NFNL_NFTABLES | NFT_MSG_NEWGEN)) return false;
      for (let p = off + 20; p + 4 <= end; ) {
        const al = s.buf.readUInt16LE(p);
        if ((s.buf.readUInt16LE(p + 2) & 0x3fff) === 1) gen = s.buf.readUInt32BE(p + 4);
        p += (al + 3) & ~3;
      }
      return true;
    }, 0);
    return gen;
  }

  // The elements of one plain set: keys as four 32-bit words each (most significant first) and
  // the milliseconds each has left (-1: no timeout). The kernel resumes a dump by walking the set
  // again from its start and skipping what it already sent, so a whole dump costs time in the
  // square of the size (1,000,000 elements: about 50 s of kernel CPU); maxRounds > 0 stops after
  // that many messages and answers 'partial'.
  function dumpSet(fam, table, set, maxRounds) {
    if (!(fam > 0)) throw new Error('unknown nft family number ' + fam);
    const s = nlSend(NFT_MSG_GETSETELEM, NLM_F_DUMP, fam, [table, set]);
    const b = s.buf;
    let cap = 1024;
    let keys = new Int32Array(cap * 4);
    let left = new Float64Array(cap);
    let count = 0;
    let status = 'ok';
    const add = (kp, klen, ms) => {
      if (count === cap) {
        cap *= 2;
        const k = new Int32Array(cap * 4);
        k.set(keys);
        keys = k;
        const l = new Float64Array(cap);
        l.set(left);
        left = l;
      }
      const base = count * 4;
      // IPv4 keys take the first word; the others stay 0.
      for (let j = 0; j * 4 < klen && j < 4; j++) keys[base + j] = b.readInt32BE(kp + j * 4);
      left[count++] = ms;
    };
    const element = (p, end) => {
      let kp = -1;
      let klen = 0;
      let ms = -1;
      let flags = 0;
      for (; p + 4 <= end; ) {
        const al = b.readUInt16LE(p);
        const at = b.readUInt16LE(p + 2) & 0x3fff;
        if (at === 1) {
          // NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE }
          klen = b.readUInt16LE(p + 4) - 4;
          kp = p + 8;
        } else if (at === 3) flags = b.readUInt32BE(p + 4);
        else if (at === 5) ms = b.readUInt32BE(p + 4) * 4294967296 + b.readUInt32BE(p + 8);
        p += (al + 3) & ~3;
      }
      // An interval set's end markers are not elements of their own.
      if (kp >= 0 && !(flags & 1)) add(kp, klen, ms);
    };
    const done = nlReceive(s, (type, flags, off, end) => {
      if (type === NLMSG_DONE) return true;
      if (type === NLMSG_ERROR) {
        const e = nlError(s, off);
        if (e === 2) status = 'absent';
        else if (e) throw new Error('listing set ' + table + ' ' + set + ': errno ' + e);
        return true;
      }
      if (flags & NLM_F_DUMP_INTR) status = 'interrupted';
      for (let p = off + 20; p + 4 <= end; ) {
        const al = b.readUInt16LE(p);
        if ((b.readUInt16LE(p + 2) & 0x3fff) === 3) {
          // NFTA_SET_ELEM_LIST_ELEMENTS { NFTA_LIST_ELEM { ... } ... }
          for (let q = p + 4; q + 4 <= p + al; ) {
            const el = b.readUInt16LE(q);
            element(q + 4, q + el);
            q += (el + 3) & ~3;
          }
        }
        p += (al + 3) & ~3;
      }
      return false;
    }, maxRounds);
    if (!done) status = 'partial';
    // Views, not copies: the arrays are handed over whole (a copy would double a million's 24 MB).
    return { status, count, keys: keys.subarray(0, count * 4), left: left.subarray(0, count) };
  }

  let nft;
  function loadNft() {
    if (nft) return nft;
    const lib = koffi.load(libs.libnftables);
    const f = {
      ctxNew: lib.func('void *nft_ctx_new(uint32_t flags)'),
      ctxFree: lib.func('void nft_ctx_free(void *ctx)'),
      bufOut: lib.func('int nft_ctx_buffer_output(void *ctx)'),
      bufErr: lib.func('int nft_ctx_buffer_error(void *ctx)'),
      getOut: lib.func('const char *nft_ctx_get_output_buffer(void *ctx)'),
      getErr: lib.func('const char *nft_ctx_get_error_buffer(void *ctx)'),
      setFlags: lib.func('void nft_ctx_output_set_flags(void *ctx, uint32_t flags)'),
      runBuf: lib.func('int nft_run_cmd_from_buffer(void *ctx, const char *buf)'),
      runFile: lib.func('int nft_run_cmd_from_filename(void *ctx, const char *path)'),
    };
    const ctx = f.ctxNew(0);
    if (!ctx) throw new Error('nft_ctx_new failed');
    f.bufOut(ctx);
    f.bufErr(ctx);
    nft = { f, ctx };
    return nft;
  }

  function runScript(args, script) {
    const { f, ctx } = loadNft();
    let flags = 0;
    const rest = [];
    let file = false;
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '-j') flags |= NFT_JSON;
      else if (args[i] === '-t') flags |= NFT_TERSE;
      else if (args[i] === '-f' && args[i + 1] === '-') {
        file = true;
        i++;
      } else rest.push(args[i]);
    }
    f.setFlags(ctx, flags);
    if (!file) {
      const r = f.runBuf(ctx, rest.join(' '));
      // Reading a buffer also empties it for the next command.
      return { code: r === 0 ? 0 : 1, stdout: f.getOut(ctx) || '', stderr: f.getErr(ctx) || '' };
    }
    if (script.spilled) {
      const r = f.runFile(ctx, script.path());
      return { code: r === 0 ? 0 : 1, stdout: f.getOut(ctx) || '', stderr: f.getErr(ctx) || '' };
    }
    const r = f.runBuf(ctx, script.text());
    const stdout = f.getOut(ctx) || '';
    const stderr = f.getErr(ctx) || '';
    if (r === 0) return { code: 0, stdout, stderr };
    // A buffer run reports errors without their line: the failed transaction changed nothing, so
    // run it again from a memory file, which reports FILE:LINE:COL as the command does.
    f.runFile(ctx, script.path());
    f.getOut(ctx);
    return { code: 1, stdout, stderr: f.getErr(ctx) || stderr };
  }

  // The generation before and after a script: whether anyone else committed around it (ADR 0043).
  // Unknown (no field) when netlink cannot be read here.
  function tryGeneration() {
    try {
      return generation();
    } catch {
      return undefined;
    }
  }
  function runNft(args, script) {
    if (args[0] === '--generation') return { code: 0, stdout: '', stderr: '', generation: generation() };
    if (args[0] === '--dump-set')
      return { code: 0, stdout: '', stderr: '', dump: dumpSet(Number(args[1]), args[2], args[3], Number(args[4]) || 0) };
    if (!(args[0] === '-f' && args[1] === '-')) return runScript(args, script);
    const before = tryGeneration();
    const r = runScript(args, script);
    const after = before === undefined ? undefined : tryGeneration();
    if (after !== undefined) r.gen = { before, after };
    return r;
  }

  let ipset;
  function loadIpset() {
    if (ipset) return ipset;
    const lib = koffi.load(libs.libipset);
    // Unnamed prototypes: koffi's type names are global to the process, so a named one could be
    // declared once only and the next firewall's core on the same thread would fail to load.
    const CustomErr = koffi.proto('int (void *ipset, void *p, int status, const char *msg)');
    const StdErr = koffi.proto('int (void *ipset, void *p)');
    // Variadic in C; the library always calls it with "%s" and one string (its output buffer).
    const Out = koffi.proto('int (void *session, void *p, const char *fmt, const char *text)');
    const f = {
      loadTypes: lib.func('void ipset_load_types(void)'),
      init: lib.func('void *ipset_init(void)'),
      fini: lib.func('int ipset_fini(void *ipset)'),
      session: lib.func('void *ipset_session(void *ipset)'),
      envSet: lib.func('void ipset_envopt_set(void *session, int env)'),
      reportMsg: lib.func('const char *ipset_session_report_msg(void *session)'),
      reportReset: lib.func('void ipset_session_report_reset(void *session)'),
      report: lib.func('int ipset_session_report(void *session, int type, const char *fmt, ...)'),
      printf: lib.func('ipset_custom_printf', 'int', [
        'void *',
        koffi.pointer(CustomErr),
        koffi.pointer(StdErr),
        koffi.pointer(Out),
        'void *',
      ]),
      parseStream: lib.func('int ipset_parse_stream(void *ipset, void *file)'),
    };
    f.loadTypes();
    const io = { out: '', err: '' };
    // The library's defaults print and exit(3) the process on an error: these collect instead.
    // A parameter problem is turned into a session report so it gets the "Error in line N" prefix.
    const ce = koffi.register((h, _p, status, msg) => {
      if (!status || !msg) return 0;
      f.report(f.session(h), IPSET_ERROR, '%s', 'str', msg);
      return -1;
    }, koffi.pointer(CustomErr));
    const se = koffi.register((h) => {
      const s = f.session(h);
      const msg = f.reportMsg(s);
      if (msg) io.err += msg.replace(/\n+$/, '') + '\n';
      f.reportReset(s);
      return -1;
    }, koffi.pointer(StdErr));
    const out = koffi.register((_s, _p, _fmt, text) => {
      if (text) io.out += text;
      return 0;
    }, koffi.pointer(Out));
    ipset = { f, io, ce, se, out };
    return ipset;
  }

  function openHandle(exist) {
    const { f, ce, se, out } = loadIpset();
    const h = f.init();
    if (!h) throw new Error('ipset_init failed');
    f.printf(h, ce, se, out, null);
    if (exist) f.envSet(f.session(h), IPSET_ENV_EXIST);
    return h;
  }

  function streamInto(h, script) {
    const { f } = loadIpset();
    const file = c.fopen(script.path(), 'r');
    if (!file) throw new Error('fopen of memfd failed, errno ' + koffi.errno());
    try {
      f.parseStream(h, file);
    } finally {
      c.fclose(file);
    }
  }

  // "-exist restore" (every commit) reuses one handle and its netlink socket; the handle's line
  // counter runs on across calls, so reported line numbers are made relative to this call's text.
  // Other commands (list -t, save, destroy) get a fresh handle: "-t" would stick to a session.
  // Unlike the command, the library goes on after a failing line and reports every one of them.
  let restorer;
  function runIpset(args, script) {
    const { f, io } = loadIpset();
    const exist = args.includes('-exist');
    const words = args.filter((a) => a !== '-exist');
    io.out = '';
    io.err = '';
    if (exist && words.length === 1 && words[0] === 'restore') {
      if (!restorer) restorer = { h: openHandle(true), lines: 0 };
      const before = restorer.lines;
      restorer.lines += script.lines;
      streamInto(restorer.h, script);
      const stderr = io.err.replace(/Error in line (\d+)/g, (_m, n) => 'Error in line ' + (Number(n) - before));
      return { code: io.err ? 1 : 0, stdout: io.out, stderr };
    }
    const h = openHandle(exist);
    try {
      if (words[0] !== 'restore') {
        script.close();
        script.push([words.join(' ') + '\n']);
      }
      streamInto(h, script);
    } finally {
      f.fini(h);
    }
    return { code: io.err ? 1 : 0, stdout: io.out, stderr: io.err };
  }

  function run(tool, args, script) {
    return tool === 'nft' ? runNft(args, script) : runIpset(args, script);
  }

  // An element batch encoded by the caller (nft-netlink.ts, ADR 0045) on the same socket. nfnetlink
  // handles a batch within the send call, so its acks and errors are all queued when send returns:
  // read without waiting, and no further once the expected number of clean acks is in (a batch
  // the kernel took whole queues nothing else; a read that finds the socket empty was a syscall
  // per ban). The generation is read after it only: our own transaction moves it by exactly one,
  // so the caller tells a foreign commit, before or during ours, from the value after ours alone
  // (ADR 0066).
  const MSG_DONTWAIT = 0x40;
  const EAGAIN = 11;
  // ipset's messages (generation false) are no nf_tables transaction: nothing to read after them.
  function netlink(bytes, acks, generation_ = true) {
    const s = nlOpen();
    nlWrite(s, bytes);
    const parts = [];
    let clean = 0;
    while (!(acks > 0 && clean >= acks)) {
      const n = Number(c.recv(s.fd, s.buf, s.buf.length, MSG_DONTWAIT));
      if (n > 0) {
        parts.push(Buffer.from(s.buf.subarray(0, n)));
        for (let off = 0; off + 20 <= n; ) {
          const len = s.buf.readUInt32LE(off);
          if (len < 16) break;
          if (s.buf.readUInt16LE(off + 4) === NLMSG_ERROR && s.buf.readInt32LE(off + 16) === 0) clean++;
          off += (len + 3) & ~3;
        }
        continue;
      }
      if (n < 0 && koffi.errno() !== EAGAIN) {
        nlClose();
        throw new Error('netlink recv failed, errno ' + koffi.errno());
      }
      break;
    }
    const reply = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    return generation_ ? { reply, gen: { after: generation() } } : { reply };
  }

  function load(tool) {
    if (tool === 'nft') loadNft();
    else loadIpset();
  }

  function close() {
    nlClose();
    if (nft) nft.f.ctxFree(nft.ctx);
    if (restorer) ipset.f.fini(restorer.h);
    nft = undefined;
    restorer = undefined;
  }

  // libnftables holds a transaction's every element until it commits (≈ 400 MB for a million) and
  // frees them into this thread's malloc arena, which keeps them resident until trimmed.
  function trim() {
    if (mallocTrim) mallocTrim(0);
  }

  return { Script, run, load, close, netns, trim, netlink };
})`;

/**
 * The kernel worker thread, run with `new Worker(src, {eval})`. When asked, it first moves itself
 * for good into a named network namespace.
 *
 * Protocol: `{id, append: string[]}` adds script text to request `id`; `{id, tool, args, input?}`
 * runs it (`tool` = nft | ipset, `args` as the command line would have them, or nft's
 * `--generation` and `--dump-set NFPROTO TABLE SET MAX_ROUNDS`, read over netlink) and answers
 * `{id, code, stdout, stderr}` (plus `gen`, `generation` or `dump`); `{id, netlink, acks,
 * generation}` sends an encoded netlink batch and answers `{id, reply, gen?}`; `{stop: true}`
 * frees the contexts, trims the C heap and ends the thread.
 */
export const KERNEL_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const koffi = require(workerData.koffi);

function fail(what, err) {
  parentPort.postMessage({ ready: false, error: what + ': ' + (err && err.message ? err.message : String(err)) });
  process.exit(0);
}

let core;
try {
  core = (${KERNEL_CORE_SOURCE})(koffi, fs, workerData);
} catch (err) {
  fail('cannot load libc through koffi', err);
}

if (workerData.netns) {
  try {
    core.netns(workerData.netns).enter();
  } catch (err) {
    fail('cannot enter network namespace ' + workerData.netns, err);
  }
}

// After a request of at least this much script (≈ 100,000 elements) the C heap is trimmed.
const TRIM_AFTER_CHARS = 4 << 20;
const pending = new Map();
parentPort.on('message', (m) => {
  // Idle: free the contexts and what they held, and end; the driver starts another when needed.
  if (m.stop) {
    core.close();
    core.trim();
    process.exit(0);
  }
  // An encoded netlink batch (a big ipset load): sent from this thread, the kernel's answer back.
  if (m.netlink) {
    let res;
    try {
      const r = core.netlink(Buffer.from(m.netlink.buffer, m.netlink.byteOffset, m.netlink.byteLength), m.acks, m.generation);
      const reply = new Uint8Array(r.reply);
      res = { id: m.id, code: 0, stdout: '', stderr: '', reply, gen: r.gen };
      parentPort.postMessage(res, [reply.buffer]);
    } catch (err) {
      parentPort.postMessage({ id: m.id, code: null, stdout: '', stderr: '', error: String(err && err.message ? err.message : err) });
    }
    return;
  }
  let script = pending.get(m.id);
  if (!script) {
    script = new core.Script();
    pending.set(m.id, script);
  }
  const more = m.append || m.input;
  let res;
  try {
    if (script.error) throw script.error;
    if (more) script.push(more);
    if (m.append) return;
    res = core.run(m.tool, m.args, script);
  } catch (err) {
    // A failed append (memory file) is answered when the request runs.
    if (m.append) {
      script.error = err;
      return;
    }
    res = { code: null, stdout: '', stderr: '', error: String(err && err.message ? err.message : err) };
  }
  pending.delete(m.id);
  // Trimmed here, before answering: the calling thread's event loop never waits for it.
  if (script.total >= TRIM_AFTER_CHARS) core.trim();
  script.close();
  res.id = m.id;
  // A set's elements travel as typed arrays handed over, not copied.
  parentPort.postMessage(res, res.dump ? [res.dump.keys.buffer, res.dump.left.buffer] : []);
});

// Load what was asked for up front, so a missing library is known before the first ban.
try {
  core.load(workerData.tool);
} catch (err) {
  fail('cannot load ' + (workerData.tool === 'nft' ? workerData.libnftables : workerData.libipset), err);
}
parentPort.postMessage({ ready: true });
process.on('exit', () => core.close());
`;
