"""kernel-sqs: the Amazon SQS broker for kernel (boto3), in the message layout of kombu's SQS
transport, so Celery clients and workers share its queues. The entry point is
`kernel_sqs.plugin`; the transport is `kernel_sqs.transport.SQSTransport`."""
