# retainwise on AWS: the API on ECS Fargate behind an HTTPS load balancer, workers on ECS
# Fargate scaled on the queue's backlog from zero, SQS + dead-letter queue, S3, RDS PostgreSQL,
# secrets in Secrets Manager, alarms and a dashboard. deploy/aws/README.md walks through it.

module "network" {
  source              = "./modules/network"
  name                = var.name
  region              = var.aws_region
  cidr                = var.vpc_cidr
  az_count            = var.az_count
  nat_gateway_per_az  = var.nat_gateway_per_az
  interface_endpoints = var.interface_endpoints
  log_retention_days  = var.log_retention_days
}

module "data" {
  source                      = "./modules/data"
  name                        = var.name
  vpc_id                      = module.network.vpc_id
  private_subnet_ids          = module.network.private_subnet_ids
  tasks_security_group_id     = module.service.tasks_security_group_id
  upload_retention_days       = var.upload_retention_days
  result_retention_days       = var.result_retention_days
  site_origin                 = "https://${var.domain_name}"
  visibility_timeout_secs     = var.visibility_timeout_secs
  max_receives                = var.max_receives
  message_retention_secs      = var.message_retention_secs
  db_engine_version           = var.db_engine_version
  db_instance_class           = var.db_instance_class
  db_allocated_storage_gb     = var.db_allocated_storage_gb
  db_max_allocated_storage_gb = var.db_max_allocated_storage_gb
  db_multi_az                 = var.db_multi_az
  db_backup_retention_days    = var.db_backup_retention_days
}

module "service" {
  source                  = "./modules/service"
  name                    = var.name
  region                  = var.aws_region
  vpc_id                  = module.network.vpc_id
  vpc_cidr                = module.network.vpc_cidr
  public_subnet_ids       = module.network.public_subnet_ids
  private_subnet_ids      = module.network.private_subnet_ids
  domain_name             = var.domain_name
  certificate_arn         = var.certificate_arn
  alb_deletion_protection = var.alb_deletion_protection
  image_tag               = var.image_tag
  queue_backend           = var.queue_backend
  queue_url               = module.data.queue_url
  queue_name              = module.data.queue_name
  queue_arn               = module.data.queue_arn
  dlq_arn                 = module.data.dlq_arn
  bucket_name             = module.data.bucket_name
  bucket_arn              = module.data.bucket_arn
  database_url_secret_arn = module.data.database_url_secret_arn
  jwt_secret_arn          = module.data.jwt_secret_arn
  clerk_frontend_api      = var.clerk_frontend_api
  jwks_url                = var.jwks_url
  jwt_issuer              = var.jwt_issuer
  visibility_timeout_secs = var.visibility_timeout_secs
  max_receives            = var.max_receives
  max_upload_bytes        = var.max_upload_bytes
  metrics_namespace       = var.metrics_namespace
  api_cpu                 = var.api_cpu
  api_memory              = var.api_memory
  api_desired_count       = var.api_desired_count
  worker_cpu              = var.worker_cpu
  worker_memory           = var.worker_memory
  worker_concurrency      = var.worker_concurrency
  worker_max_count        = var.worker_max_count
  worker_backlog_per_task = var.worker_backlog_per_task
  log_retention_days      = var.log_retention_days
}

module "monitoring" {
  source                  = "./modules/monitoring"
  name                    = var.name
  region                  = var.aws_region
  alarm_emails            = var.alarm_emails
  queue_backend           = var.queue_backend
  queue_name              = module.data.queue_name
  dlq_name                = module.data.dlq_name
  metrics_namespace       = var.metrics_namespace
  dlq_alarm_threshold     = var.dlq_alarm_threshold
  queue_age_alarm_seconds = var.queue_age_alarm_seconds
  worker_log_group        = module.service.log_groups["worker"]
  cluster_name            = module.service.cluster_name
  api_service_name        = module.service.api_service_name
  worker_service_name     = module.service.worker_service_name
  alb_arn_suffix          = module.service.alb_arn_suffix
  target_group_arn_suffix = module.service.target_group_arn_suffix
  db_instance_id          = module.data.db_instance_id
  db_allocated_storage_gb = var.db_allocated_storage_gb
}
