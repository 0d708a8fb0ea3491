"""What runs on a user's machine and talks to a deployment: batch submission and follow-up
over SQS and the results sink (`batch`, `sqs`), reading data files (`data`), and the client
side's settings (`settings`)."""
