// Child process supervision for peers.mjs: spawn, route output (log file or our stderr), learn each
// child's ephemeral port, and stop everything. Children can never outlive us: on Linux they are
// started through `setpriv --pdeathsig SIGKILL` (the kernel kills them if we die, even by SIGKILL),
// and node children also exit when their IPC channel to us closes.
import fs from "node:fs";
import path from "node:path";
import { spawn } from "node:child_process";

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => process.platform === "linux" && fs.existsSync(p));

export class Supervisor {
  constructor({ logDir }) {
    this.logDir = logDir;
    this.children = []; // { name, child, exited }
    this.stopping = false;
    this.onCrash = null; // (name, code, signal) => void: a child exited while we were not stopping
  }

  /** Where a child's output goes: an append-mode log file, or our own stderr (fd 2). */
  #sink(name) {
    if (!this.logDir) return { fd: 2, file: null };
    const file = path.join(this.logDir, `${name}.log`);
    return { fd: fs.openSync(file, "a"), file };
  }

  #spawn(name, cmd, args, stdio, env) {
    const [file, argv] = SETPRIV ? [SETPRIV, ["--pdeathsig", "SIGKILL", "--", cmd, ...args]] : [cmd, args];
    const child = spawn(file, argv, { stdio, env });
    const entry = { name, child, exited: false, code: null, signal: null };
    entry.exit = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        Object.assign(entry, { exited: true, code, signal });
        resolve();
        if (!this.stopping && this.onCrash) this.onCrash(name, code, signal);
      });
    });
    child.on("error", (err) => {
      entry.spawnError = err;
    });
    this.children.push(entry);
    return entry;
  }

  /** Starts anvil on an ephemeral port; resolves with the port anvil reports ("Listening on ..."). */
  startAnvil(bin, args, timeoutMs) {
    const sink = this.#sink("anvil");
    const entry = this.#spawn("anvil", bin, ["--host", "127.0.0.1", "--port", "0", ...args], ["ignore", "pipe", sink.fd]);
    if (sink.fd !== 2) fs.closeSync(sink.fd);
    const out = sink.file ? fs.createWriteStream(sink.file, { flags: "a" }) : process.stderr;
    return this.#waitReady(entry, sink, timeoutMs, (resolve) => {
      let seen = "";
      entry.child.stdout.on("data", (chunk) => {
        out.write(chunk);
        if (seen === null) return;
        seen += chunk.toString();
        const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(seen);
        if (m) {
          seen = null;
          resolve(Number(m[1]));
        }
      });
    });
  }

  /**
   * Spawns `node script` right away, so it loads its (heavy) modules while earlier peers start.
   * The child waits for its config; `start(config)` sends it and resolves with the port the child
   * reports once it listens.
   */
  preloadNode(name, script) {
    const sink = this.#sink(name);
    const entry = this.#spawn(name, process.execPath, [script], ["ignore", sink.fd, sink.fd, "ipc"], process.env);
    if (sink.fd !== 2) fs.closeSync(sink.fd);
    const waiting = new Promise((resolve) => entry.child.on("message", (msg) => msg?.waiting && resolve()));
    const reported = new Promise((resolve) => {
      entry.child.on("message", (msg) => {
        if (msg && Number.isInteger(msg.port)) resolve(msg.port);
      });
    });
    return {
      start: (config, timeoutMs) =>
        this.#waitReady(entry, sink, timeoutMs, (resolve) => {
          waiting.then(() => entry.exited || entry.child.send({ config }));
          reported.then(resolve);
        }),
    };
  }

  #waitReady(entry, sink, timeoutMs, listen) {
    return new Promise((resolve, reject) => {
      const where = sink.file ? `see ${sink.file}` : "its output is above";
      const timer = setTimeout(() => reject(new Error(`${entry.name} did not start within ${timeoutMs / 1000} s (${where})`)), timeoutMs);
      const done = (fn) => (value) => {
        clearTimeout(timer);
        fn(value);
      };
      listen(done(resolve));
      entry.exit.then(
        done(() => {
          const why = entry.spawnError ? entry.spawnError.message : `exit code ${entry.code}, signal ${entry.signal}`;
          reject(new Error(`${entry.name} exited during startup (${why}; ${where})`));
        }),
      );
    });
  }

  /** SIGTERM every child still running, SIGKILL whatever is left after graceMs. */
  async stopAll(graceMs = 3000) {
    this.stopping = true;
    const alive = this.children.filter((c) => !c.exited && c.child.pid);
    for (const c of alive) c.child.kill("SIGTERM");
    const timeout = new Promise((r) => setTimeout(r, graceMs).unref());
    await Promise.race([Promise.all(alive.map((c) => c.exit)), timeout]);
    const stubborn = alive.filter((c) => !c.exited);
    for (const c of stubborn) c.child.kill("SIGKILL");
    await Promise.race([Promise.all(stubborn.map((c) => c.exit)), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
