variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the database."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the database."
  type        = list(string)
}

variable "tasks_security_group_id" {
  description = "The security group of the api, worker and migrate tasks (allowed to reach PostgreSQL)."
  type        = string
}

variable "upload_retention_days" {
  description = "Days an uploaded CSV is kept (uploads/)."
  type        = number
}

variable "result_retention_days" {
  description = "Days a scored CSV and its validation report are kept (results/, reports/)."
  type        = number
}

variable "visibility_timeout_secs" {
  description = "SQS visibility timeout = RETAINWISE_VISIBILITY_TIMEOUT_SECS."
  type        = number
}

variable "max_receives" {
  description = "maxReceiveCount of the redrive policy = RETAINWISE_MAX_RECEIVES."
  type        = number
}

variable "message_retention_secs" {
  description = "How long SQS keeps an unreceived message."
  type        = number
}

variable "db_engine_version" {
  description = "PostgreSQL major.minor."
  type        = string
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_allocated_storage_gb" {
  description = "Initial storage (GiB)."
  type        = number
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
}

variable "db_multi_az" {
  description = "A standby in a second zone."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
}

variable "site_origin" {
  description = "The site's origin (https://domain_name): the upload page PUTs the parts of a large file straight to the bucket from there."
  type        = string
}
