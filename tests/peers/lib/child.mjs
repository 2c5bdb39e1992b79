// Helpers for the harness's node children (facilitator, paywall servers). A child is spawned early,
// loads its modules, then asks for its settings over IPC (childConfig), listens on an ephemeral
// 127.0.0.1 port, reports { port } to the parent, and exits as soon as the IPC channel closes
// (the parent is gone).

// Started with an IPC channel that is already gone (the parent died while we loaded): leave now.
if (process.send && !process.connected) process.exit(0);
process.on("disconnect", () => process.exit(0));

/** The settings the parent sends over IPC ({ config }) once this child's turn to start has come. */
export function childConfig() {
  return new Promise((resolve) => {
    process.once("message", (msg) => resolve(msg.config));
    process.send({ waiting: true }); // handshake: only now can a message not get lost
  });
}

export function logger(tag) {
  return (...args) => console.log(new Date().toISOString(), `[${tag}]`, ...args);
}

export function serve(app, tag) {
  const log = logger(tag);
  const server = app.listen(0, "127.0.0.1", () => {
    const { port } = server.address();
    log(`listening on http://127.0.0.1:${port}`);
    if (process.send) process.send({ port });
  });
  // Clients (Purser's hyper pool) keep connections idle for a while: don't close them under their feet.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.on("error", (err) => {
    console.error(`[${tag}] server error:`, err);
    process.exit(1);
  });
  return server;
}
