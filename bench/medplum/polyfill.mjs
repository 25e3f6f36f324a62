// @medplum/core 5 expects a global WebSocket (Node 22 has one, Node 20 does
// not). The router never opens one; a stub lets the module load.
globalThis.WebSocket ??= class WebSocket {};
