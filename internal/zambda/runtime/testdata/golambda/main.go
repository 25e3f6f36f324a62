// Command golambda is a test function written with aws-lambda-go.
package main

import (
	"context"
	"errors"

	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, ev map[string]any) (map[string]any, error) {
	switch ev["mode"] {
	case "error":
		return nil, errors.New("go says no")
	case "oom":
		var hog [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			hog = append(hog, b)
		}
	}
	return map[string]any{"echo": ev}, nil
}

func main() { lambda.Start(handle) }
