variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "region" {
  description = "AWS region (dashboard widgets)."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by email)."
  type        = list(string)
}

variable "queue_backend" {
  description = "sqs or db."
  type        = string
}

variable "queue_name" {
  description = "SQS queue name."
  type        = string
}

variable "dlq_name" {
  description = "SQS dead-letter queue name."
  type        = string
}

variable "metrics_namespace" {
  description = "Namespace of the EMF queue metrics and the job-count metric filters."
  type        = string
}

variable "dlq_alarm_threshold" {
  description = "Dead-lettered jobs above which the alarm fires."
  type        = number
}

variable "queue_age_alarm_seconds" {
  description = "Age of the oldest waiting job above which the alarm fires."
  type        = number
}

variable "worker_log_group" {
  description = "The worker's log group (job-count metric filters)."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster."
  type        = string
}

variable "api_service_name" {
  description = "ECS API service."
  type        = string
}

variable "worker_service_name" {
  description = "ECS worker service."
  type        = string
}

variable "alb_arn_suffix" {
  description = "Load balancer dimension."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "API target group dimension."
  type        = string
}

variable "db_instance_id" {
  description = "RDS instance identifier."
  type        = string
}

variable "db_allocated_storage_gb" {
  description = "The database's allocated storage (GiB), for the free-storage alarm."
  type        = number
}
