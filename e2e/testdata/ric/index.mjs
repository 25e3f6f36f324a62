// A zambda run by AWS's runtime interface client (aws-lambda-ric): it
// echoes its event's body with what it learned from the Lambda environment
// and context, and throws when the body says {"mode":"throw"}.
const vars = ['AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_LOG_GROUP_NAME', 'AWS_LAMBDA_LOG_STREAM_NAME', 'AWS_REGION',
  'AWS_EXECUTION_ENV', 'LAMBDA_TASK_ROOT', '_HANDLER', '_X_AMZN_TRACE_ID'];

export const handler = async (event, context) => {
  const body = event.body ? JSON.parse(event.body) : null;
  if (body?.mode === 'throw') throw new TypeError('ric says no');
  console.log('ric handler got', JSON.stringify(body));
  return {
    statusCode: 200,
    body: JSON.stringify({
      echo: body,
      node: process.version,
      env: Object.fromEntries(vars.map((k) => [k, process.env[k] ?? null])),
      context: {
        functionName: context.functionName,
        awsRequestId: context.awsRequestId,
        invokedFunctionArn: context.invokedFunctionArn,
        logGroupName: context.logGroupName,
        logStreamName: context.logStreamName,
        memoryLimitInMB: context.memoryLimitInMB,
        remainingMs: context.getRemainingTimeInMillis(),
      },
    }),
  };
};

// The same, streamed with an HTTP prelude (status and headers), as a
// Lambda function URL serves it; awslambda is aws-lambda-ric's global.
export const stream = awslambda.streamifyResponse(async (event, responseStream) => {
  const body = event.body ? JSON.parse(event.body) : null;
  const http = awslambda.HttpResponseStream.from(responseStream, { statusCode: 201, headers: { 'x-ric': 'streamed' } });
  http.write('{"streamed":');
  http.write(JSON.stringify(body));
  http.end('}');
});
