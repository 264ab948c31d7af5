output "bucket_name" {
  description = "The object bucket (S3_BUCKET)."
  value       = aws_s3_bucket.objects.bucket
}

output "bucket_arn" {
  description = "ARN of the object bucket."
  value       = aws_s3_bucket.objects.arn
}

output "queue_url" {
  description = "URL of the prediction queue (PREDICTIONS_QUEUE_URL)."
  value       = aws_sqs_queue.predictions.url
}

output "queue_arn" {
  description = "ARN of the prediction queue."
  value       = aws_sqs_queue.predictions.arn
}

output "queue_name" {
  description = "Name of the prediction queue (CloudWatch dimension QueueName)."
  value       = aws_sqs_queue.predictions.name
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "db_instance_id" {
  description = "RDS instance identifier (CloudWatch dimension DBInstanceIdentifier)."
  value       = aws_db_instance.this.identifier
}

output "database_url_secret_arn" {
  description = "Secrets Manager ARN of the database URL."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "jwt_secret_arn" {
  description = "Secrets Manager ARN of the HS256 token secret."
  value       = aws_secretsmanager_secret.jwt.arn
}
