// Command golambda is a test function written with aws-lambda-go, run as a
// provided.al2023 bootstrap.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// dataLimit is RLIMIT_DATA as the process saw it first thing: Ward sets it
// before the program runs.
var dataLimit = func() uint64 {
	var l syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_DATA, &l)
	return l.Cur
}()

func handle(ctx context.Context, ev map[string]any) (any, error) {
	switch ev["mode"] {
	case "error":
		return nil, errors.New("go says no")
	case "panic":
		panic("go panics")
	case "exit":
		os.Exit(3)
	case "hang":
		select {}
	case "oom":
		var hog [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			hog = append(hog, b)
		}
	case "big":
		return map[string]string{"pad": strings.Repeat("x", 7<<20)}, nil
	case "log":
		fmt.Println("go line one")
		fmt.Fprintln(os.Stderr, "go line two")
	case "env":
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		return map[string]any{"env": os.Environ(), "requestId": lc.AwsRequestID, "remainingMs": time.Until(deadline).Milliseconds()}, nil
	case "info":
		return map[string]any{"pid": os.Getpid(), "dataLimit": dataLimit}, nil
	}
	return map[string]any{"echo": ev}, nil
}

func main() { lambda.Start(handle) }
