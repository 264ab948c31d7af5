# The prediction queue and its dead-letter queue. maxReceiveCount is RETAINWISE_MAX_RECEIVES and
# the visibility timeout RETAINWISE_VISIBILITY_TIMEOUT_SECS: the same variables feed the task
# definitions (scripts/deploy-checks.sh checks that they agree).

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-predictions-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum: dead jobs are redriven, not lost
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "predictions" {
  name                       = "${var.name}-predictions"
  visibility_timeout_seconds = var.visibility_timeout_secs
  message_retention_seconds  = var.message_retention_secs
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receives
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.predictions.arn]
  })
}
