// Package runtime runs zambdas as worker processes that speak the AWS Lambda
// Runtime API to Ward: binaries built with github.com/aws/aws-lambda-go
// ("provided" runtimes) run unchanged, and Node.js functions run under
// Ward's own small bootstrap, embedded in the binary.
//
// # Use
//
//	pool, err := runtime.New(runtime.Config{WorkDir: dir, Logger: log})
//	defer pool.Close()
//	res, err := pool.Invoke(ctx, runtime.Function{
//		Key: id + "@" + zipSHA256, Name: "hello", Runtime: "nodejs20.x",
//		CodeDir: unpacked, MemoryMB: 256, Timeout: 10 * time.Second,
//	}, runtime.Invocation{RequestID: reqID, Payload: event})
//
// Invoke returns the handler's raw response in Result.Payload, and in every
// case (failures too) the invocation's log lines and timings. A failure is
// an *Error whose Kind says what happened: KindHandler (the handler threw or
// returned an error: Error.ErrorType and the message are the function's),
// KindInit, KindCrash, KindTimeout, KindOOM, KindTooLarge, KindBusy,
// KindNoRuntime. errors.Is(err, runtime.ErrTimeout) (or KindTimeout) works
// too. Messages are written for the function's author. Besides these: a
// canceled ctx (wrapped), ErrClosed, and errors for invalid settings.
//
// # Workers
//
// A worker is one process, started by Config.Sandbox (package sandbox:
// bubblewrap in production, its code at /var/task and Ward's Node
// bootstrap under /var/runtime; sandbox.Direct without isolation), plus a
// Runtime API server on a listener the sandbox hands over (127.0.0.1:9001
// in the worker's own network namespace), passed as
// AWS_LAMBDA_RUNTIME_API. After each invocation that succeeds, every
// process the function started is ended (Process.Sweep). It serves one
// invocation at a time: GET /2018-06-01/runtime/invocation/next gets the
// event (with Lambda-Runtime-Aws-Request-Id, -Deadline-Ms,
// -Invoked-Function-Arn, -Trace-Id), and the worker answers with POST
// /invocation/{id}/response or /invocation/{id}/error, or /init/error if it
// cannot load. A streamed response (Lambda-Runtime-Function-Response-Mode:
// streaming) is read whole; a failure midway comes in its trailers, and an
// HTTP prelude (HttpResponseStream, content type
// application/vnd.awslambda.http-integration-response) becomes a
// {statusCode, headers, body} result. Idle workers stay warm for the same Function.Key and
// settings and are killed after Config.IdleTimeout. After any failure the
// worker is killed, so the next invocation starts on a fresh process. Up to
// Function.Concurrency invocations of a Key run at once. At most
// Config.MaxWorkers processes live at once across every Key, and at most
// Config.ProjectWorkers of one Function.Project, so that one tenant's
// flood leaves room for the others. A cold start past a bound stops an
// idle worker to take its place: at the project's bound one of its own;
// at the server's, the least recently used one of the project holding the
// most workers, unless the starting project already holds its fair share
// (MaxWorkers divided among the projects holding workers), which only
// replaces its own. Without a slot or a place, Invoke waits up to
// Config.QueueWait in all (never past the deadline) for one to come free,
// then fails with KindBusy.
//
// Node functions: "file.export" handlers (default index.index, falling back
// to the handler export); CommonJS, or ESM (.mjs, "type": "module", ESM
// syntax in .js) through import(); async, sync and callback-style handlers;
// a Lambda-like context. provided and provided.al2023 run the executable
// CodeDir/bootstrap.
//
// Outbound HTTP from Node functions: with HTTP_PROXY or HTTPS_PROXY set
// (a sandbox sets them: its only network is a loopback with Ward's egress
// proxy on it), the bootstrap sends every http/https Agent's connections
// and fetch's through that proxy with CONNECT, TLS to the destination
// inside the tunnel; NO_PROXY hosts, loopback and the proxy itself are
// reached directly. A refused destination fails the request with the
// proxy's answer ("ward egress: ..."). Node 20 ignores those variables by
// itself, and Node 22's NODE_USE_ENV_PROXY costs ~18 ms at every start and
// covers only the global agents, so Ward does not set it.
//
// The environment is built from scratch: PATH, HOME and TMPDIR (the
// sandbox's /tmp; without one, a private scratch dir per Key under
// WorkDir), LANG=C.UTF-8, TZ=UTC,
// AWS_REGION=AWS_DEFAULT_REGION=local, GOMEMLIMIT for provided runtimes,
// then Function.Env, then what it cannot replace: the AWS_LAMBDA_*
// variables (with Lambda's log group and stream names), LAMBDA_TASK_ROOT,
// LAMBDA_RUNTIME_DIR, _HANDLER and, for Node, AWS_EXECUTION_ENV. So AWS's
// own runtime clients (aws-lambda-ric) start as they do on Lambda. Nothing
// of Ward's own environment is passed on. The working directory is CodeDir;
// each worker has its own process group, and kills take the whole group.
//
// # Limits
//
// Timeout: at the deadline (Invocation.Deadline, or an earlier ctx
// deadline) the process group gets SIGKILL.
//
// Memory: every worker runs with RLIMIT_DATA = MemoryMB + 64 MiB (and
// RLIMIT_CORE = 0). RLIMIT_DATA counts private writable memory (heap, brk,
// anonymous mappings, thread stacks), not address space that is only
// reserved, which V8 and the Go runtime reserve in large amounts (so
// RLIMIT_AS would not do). To have the limit in place before the program
// runs, the child starts under PTRACE_TRACEME: the kernel stops it right
// after execve, Ward sets the limits with prlimit and detaches; where ptrace
// is refused, the limits are set just after the start instead (a race,
// logged once). cgroups would be better but are rarely writable where Ward
// runs. Node gets no --max-old-space-size: any V8 flag stops Node from using
// the code cache of its built-in modules (10-20 ms more per cold start), and
// at the rlimit V8 stops with "JavaScript heap out of memory" anyway.
// provided functions also get GOMEMLIMIT at 90% of MemoryMB.
//
// Out-of-memory detection: a worker that dies without answering is
// KindOOM when its stderr during this invocation carried a runtime's
// out-of-memory message (any "out of memory" or "cannot allocate memory",
// as V8, the Go runtime and C print them, std::bad_alloc, MemoryError), or when it was killed by a SIGKILL that Ward did not send
// (the kernel's OOM killer), or when its peak resident memory had reached
// 80% of MemoryMB (a runtime may crash at the limit without saying why), or
// when its stderr shows a memory fault (SIGSEGV/SIGBUS) inside Go's collector
// (runtime/mgc*.go), which is how Go's collector has died at RLIMIT_DATA. A Node "Array buffer allocation failed"
// error (Buffers live outside the JS heap) is KindOOM too.
//
// Output: a response over Config.MaxOutputBytes (6 MiB) is refused with 413
// to the worker and KindTooLarge to the caller. Bodies the worker posts are
// read up to that size plus one byte, never more.
//
// Logs: stdout and stderr are read as they come and split into lines
// (longer than 16 KiB: split), at most 256 KiB per invocation, then one
// "[truncated]" line. They are attributed without sleeping: the worker
// writes, then answers, so when the answer arrives its lines are in the
// pipe; Invoke reads the pipes until they are empty (the readers only read
// under the same lock, so no byte is in between). Node writes to a full
// pipe asynchronously by default, so the bootstrap makes its stdout and
// stderr blocking (and waits for them to drain before it posts, where that
// is not possible). Lines between two pipes are ordered as read.
//
// # Isolation
//
// What isolates workers from Ward and from each other is the sandbox's
// (see package sandbox and docs/security.md); this package gives it each
// worker's limits (memorySize, Function.EphemeralMB for /tmp) and its
// project (Function.Project: a CPU weight per project), and without a
// sandbox (sandbox.Direct) runs workers as Ward's own user.
package runtime
