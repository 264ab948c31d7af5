variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "region" {
  description = "AWS region (AWS_REGION of the tasks)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's range: the load balancer's addresses (RETAINWISE_TRUSTED_PROXIES)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "domain_name" {
  description = "The name users reach the service at (RETAINWISE_PUBLIC_URL = https://domain_name)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of domain_name for the HTTPS listener."
  type        = string
}

variable "alb_deletion_protection" {
  description = "Refuse to delete the load balancer."
  type        = bool
}

variable "image_tag" {
  description = "The image tag in the ECR repository that every task runs."
  type        = string
}

variable "queue_backend" {
  description = "sqs or db."
  type        = string
}

variable "queue_url" {
  description = "SQS queue URL (PREDICTIONS_QUEUE_URL)."
  type        = string
}

variable "queue_name" {
  description = "SQS queue name (the AWS/SQS dimension)."
  type        = string
}

variable "queue_arn" {
  description = "SQS queue ARN (IAM)."
  type        = string
}

variable "dlq_arn" {
  description = "Dead-letter queue ARN (IAM)."
  type        = string
}

variable "bucket_name" {
  description = "The object bucket (S3_BUCKET)."
  type        = string
}

variable "bucket_arn" {
  description = "The object bucket's ARN (IAM)."
  type        = string
}

variable "database_url_secret_arn" {
  description = "Secrets Manager ARN of the database URL (DATABASE_URL)."
  type        = string
}

variable "jwt_secret_arn" {
  description = "Secrets Manager ARN of the HS256 token secret (RETAINWISE_JWT_SECRET)."
  type        = string
}

variable "clerk_frontend_api" {
  description = "The original service's Clerk domain, when sign-in goes through Clerk."
  type        = string
}

variable "jwks_url" {
  description = "JWKS URL of another OIDC provider."
  type        = string
}

variable "jwt_issuer" {
  description = "Expected iss with jwks_url."
  type        = string
}

variable "visibility_timeout_secs" {
  description = "RETAINWISE_VISIBILITY_TIMEOUT_SECS."
  type        = number
}

variable "max_receives" {
  description = "RETAINWISE_MAX_RECEIVES."
  type        = number
}

variable "max_upload_bytes" {
  description = "RETAINWISE_MAX_UPLOAD_BYTES."
  type        = number
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the EMF queue metrics (RETAINWISE_EMF_NAMESPACE)."
  type        = string
}

variable "api_cpu" {
  description = "API task CPU units."
  type        = number
}

variable "api_memory" {
  description = "API task memory (MiB)."
  type        = number
}

variable "api_desired_count" {
  description = "API tasks."
  type        = number
}

variable "worker_cpu" {
  description = "Worker task CPU units."
  type        = number
}

variable "worker_memory" {
  description = "Worker task memory (MiB)."
  type        = number
}

variable "worker_concurrency" {
  description = "Jobs one worker task scores at once."
  type        = number
}

variable "worker_max_count" {
  description = "Most worker tasks."
  type        = number
}

variable "worker_backlog_per_task" {
  description = "Jobs waiting or running per worker task the autoscaler aims at."
  type        = number
}

variable "log_retention_days" {
  description = "Days the tasks' logs are kept."
  type        = number
}
