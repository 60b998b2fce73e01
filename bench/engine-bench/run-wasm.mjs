// Runs the wasm32-wasip1 build of the engine benchmark in Node's V8 (Envoy's Wasm runtime too).
//   node bench/engine-bench/run-wasm.mjs path/to/engine-bench.wasm [CASE-SUBSTRING]
//
// The few WASI calls the benchmark makes are implemented here rather than with node:wasi, whose
// Node 20 build crashed (SIGSEGV) on the way out of this module.
import { readFileSync, writeSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import process from "node:process";

const args = ["engine-bench", ...process.argv.slice(3)].map((a) => Buffer.from(a + "\0"));
let memory;
const view = () => new DataView(memory.buffer);
const bytes = (ptr, len) => new Uint8Array(memory.buffer, ptr, len);
class Exit { constructor(code) { this.code = code; } }

const wasi = {
  args_sizes_get(argc, size) {
    view().setUint32(argc, args.length, true);
    view().setUint32(size, args.reduce((n, a) => n + a.length, 0), true);
    return 0;
  },
  args_get(argv, buf) {
    for (const [i, a] of args.entries()) {
      view().setUint32(argv + 4 * i, buf, true);
      bytes(buf, a.length).set(a);
      buf += a.length;
    }
    return 0;
  },
  environ_sizes_get(count, size) {
    view().setUint32(count, 0, true);
    view().setUint32(size, 0, true);
    return 0;
  },
  environ_get: () => 0,
  clock_time_get(_id, _precision, out) {
    view().setBigUint64(out, process.hrtime.bigint(), true); // monotonic: all Instant needs
    return 0;
  },
  random_get(buf, len) {
    randomFillSync(bytes(buf, len));
    return 0;
  },
  fd_write(fd, iovs, count, written) {
    let n = 0;
    for (let i = 0; i < count; i++) {
      const ptr = view().getUint32(iovs + 8 * i, true);
      const len = view().getUint32(iovs + 8 * i + 4, true);
      n += writeSync(fd, bytes(ptr, len));
    }
    view().setUint32(written, n, true);
    return 0;
  },
  proc_exit(code) {
    throw new Exit(code);
  },
};

const module = new WebAssembly.Module(readFileSync(process.argv[2]));
// botgate's wasm build links the proxy-wasm host functions (module "env"); the engine never
// calls them, so stubs that fail loudly stand in for Envoy.
const env = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.module === "env") {
    env[imp.name] = () => { throw new Error(`host call ${imp.name} in the engine benchmark`); };
  }
}
const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi, env });
memory = instance.exports.memory;
try {
  instance.exports._start();
} catch (e) {
  if (!(e instanceof Exit)) throw e;
  process.exitCode = e.code;
}
