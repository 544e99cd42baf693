// Command emptylambda is a Go Lambda that does nothing: the benchmarks
// time its init as the machine's floor for any Go function's.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, struct{}) error { return nil })
}
