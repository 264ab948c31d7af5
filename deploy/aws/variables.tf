# Defaults are the sizes deploy/aws/README.md prices. The original's names are kept where it
# had them (aws_region, environment, sqs_visibility_timeout → visibility_timeout_secs,
# sqs_dlq_max_receive_count → max_receives, dlq_alarm_threshold, queue_age_alarm_threshold →
# queue_age_alarm_seconds).

variable "aws_region" {
  description = "AWS region of everything."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of every resource name (lower-case letters, digits, '-')."
  type        = string
  default     = "retainwise"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: 2-21 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "environment" {
  description = "Environment tag (prod, staging, …)."
  type        = string
  default     = "prod"
}

variable "domain_name" {
  description = "The host name users reach the service at, e.g. churn.example.com (its DNS record points at the output alb_dns_name)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name, in aws_region (README, step 2)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the image in the ECR repository this creates (README, step 3: scripts/image.sh or docker build, then push)."
  type        = string
}

variable "queue_backend" {
  description = "sqs: Amazon SQS with a dead-letter queue; db: the PostgreSQL queue (no SQS calls; autoscaling reads the EMF metrics)."
  type        = string
  default     = "sqs"
  validation {
    condition     = contains(["sqs", "db"], var.queue_backend)
    error_message = "queue_backend is sqs or db."
  }
}

variable "clerk_frontend_api" {
  description = "Clerk domain for sign-in (the original's CLERK_FRONTEND_API); empty for none."
  type        = string
  default     = ""
}

variable "jwks_url" {
  description = "JWKS URL of another OIDC provider (with jwt_issuer); empty for none. With neither, tokens are HS256 with a generated secret and users sign in with API keys."
  type        = string
  default     = ""
}

variable "jwt_issuer" {
  description = "Expected iss of tokens from jwks_url."
  type        = string
  default     = ""
}

variable "vpc_cidr" {
  description = "Address range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones (2 or 3)."
  type        = number
  default     = 2
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per zone instead of one shared (adds ~$33/month per zone)."
  type        = bool
  default     = false
}

variable "interface_endpoints" {
  description = "AWS services reached through VPC interface endpoints (~$7.30/month per zone each). S3 always uses a free gateway endpoint."
  type        = list(string)
  default     = ["sqs"]
}

variable "upload_retention_days" {
  description = "Days an uploaded CSV is kept before S3 deletes it."
  type        = number
  default     = 30
}

variable "result_retention_days" {
  description = "Days a scored CSV and its report are kept before S3 deletes them."
  type        = number
  default     = 90
}

variable "visibility_timeout_secs" {
  description = "RETAINWISE_VISIBILITY_TIMEOUT_SECS and the SQS queue's visibility timeout (the original's sqs_visibility_timeout): how long a crashed worker's job waits; the heartbeat extends it while a job runs."
  type        = number
  default     = 300
}

variable "max_receives" {
  description = "RETAINWISE_MAX_RECEIVES and the DLQ's maxReceiveCount (the original's sqs_dlq_max_receive_count)."
  type        = number
  default     = 3
}

variable "message_retention_secs" {
  description = "How long SQS keeps a message nobody received (the original's sqs_message_retention, 4 days)."
  type        = number
  default     = 345600
}

variable "max_upload_bytes" {
  description = "RETAINWISE_MAX_UPLOAD_BYTES."
  type        = number
  default     = 10485760
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the queue (EMF) and job metrics."
  type        = string
  default     = "Retainwise"
}

variable "db_engine_version" {
  description = "PostgreSQL version."
  type        = string
  default     = "16.4"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_allocated_storage_gb" {
  description = "Initial database storage (GiB, gp3)."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "A synchronous standby in a second zone (doubles the instance cost)."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery)."
  type        = number
  default     = 7
}

variable "alb_deletion_protection" {
  description = "Refuse to delete the load balancer (turn off before terraform destroy)."
  type        = bool
  default     = true
}

variable "api_cpu" {
  description = "API task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 512
}

variable "api_memory" {
  description = "API task memory (MiB)."
  type        = number
  default     = 1024
}

variable "api_desired_count" {
  description = "API tasks (2: one per zone)."
  type        = number
  default     = 2
}

variable "worker_cpu" {
  description = "Worker task CPU units: the scorer uses every core it gets."
  type        = number
  default     = 1024
}

variable "worker_memory" {
  description = "Worker task memory (MiB); training needs RETAINWISE_TRAINING_MAX_MEMORY_MB (1024) more than scoring."
  type        = number
  default     = 2048
}

variable "worker_concurrency" {
  description = "Jobs one worker task scores at once."
  type        = number
  default     = 2
}

variable "worker_max_count" {
  description = "Most worker tasks the autoscaler starts."
  type        = number
  default     = 10
}

variable "worker_backlog_per_task" {
  description = "Jobs waiting or running per worker task the autoscaler aims at."
  type        = number
  default     = 4
}

variable "log_retention_days" {
  description = "Days logs are kept."
  type        = number
  default     = 365
}

variable "alarm_emails" {
  description = "Addresses that receive the alarms."
  type        = list(string)
  default     = []
}

variable "dlq_alarm_threshold" {
  description = "Dead-lettered jobs above which an alarm fires (the original's 5)."
  type        = number
  default     = 5
}

variable "queue_age_alarm_seconds" {
  description = "Age of the oldest waiting job above which an alarm fires (the original's 30 min)."
  type        = number
  default     = 1800
}
