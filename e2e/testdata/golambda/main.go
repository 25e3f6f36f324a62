// Command golambda is a zambda written with aws-lambda-go, run by Ward as
// provided.al2023 in the end-to-end tests.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Body *string `json:"body"`
}

type result struct {
	StatusCode int    `json:"statusCode"`
	Body       string `json:"body"`
}

func handle(_ context.Context, ev event) (result, error) {
	var echo any
	if ev.Body != nil {
		_ = json.Unmarshal([]byte(*ev.Body), &echo)
	}
	b, err := json.Marshal(map[string]any{"echo": echo, "runtime": "go"})
	if err != nil {
		return result{}, err
	}
	return result{StatusCode: 200, Body: string(b)}, nil
}

func main() { lambda.Start(handle) }
