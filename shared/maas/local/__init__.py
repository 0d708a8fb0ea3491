"""A user's local tools for the functions: run them in this process as Lambda would
(`lambda_runtime`) and feed the queue function from a real SQS API the way Lambda's event
source mapping does (`event_source`). Not shipped to Lambda."""
